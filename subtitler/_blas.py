"""Load an optimized CBLAS into the process before MLX is first imported (Linux CPU).

MLX's Linux CPU wheel links a reference BLAS that runs matmul at a few GFLOP/s.
Any library loaded earlier with RTLD_GLOBAL that exports the standard
``cblas_sgemm`` takes over its symbols, which made matmul and conv1d about 30-60x
faster here. Order tried: ``$SUBTITLER_BLAS`` (a path), the system OpenBLAS, the
``cmeel-openblas`` wheel when its fixed CPU kernel runs on this processor, MKL.

``SUBTITLER_BLAS=0`` (or ``off``) turns the whole thing off.

In front of the BLAS goes ``subtitler._gemv_forward`` when it was built (a small C
extension, see its source): its ``cblas_sgemm`` sends the one-row products of a
decoding step to ``sgemv``, which made a greedy step about 30% faster here.
``SUBTITLER_GEMV_FORWARD=0`` leaves it out.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import sys
import sysconfig

_loaded: str | None = None
_library: ctypes.CDLL | None = None  # the preloaded BLAS
_forwarder: ctypes.CDLL | None = None
_tried = False
_OFF = ("0", "off", "no", "false", "none")

# OpenBLAS builds without DYNAMIC_ARCH are fixed to one kernel; these need AVX-512.
_AVX512_CORES = {b"SKYLAKEX", b"COOPERLAKE", b"SAPPHIRERAPIDS"}


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _site_dirs() -> list[str]:
    dirs = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    dirs.update(p for p in sys.path if p.endswith("site-packages"))
    return sorted(dirs)


def _candidates() -> list[str]:
    found = []
    for name in ("libopenblas.so.0", "libopenblas.so"):
        for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"):
            p = os.path.join(d, name)
            if os.path.exists(p):
                found.append(p)
    lib = ctypes.util.find_library("openblas")
    if lib:
        found.append(lib)
    for d in _site_dirs():
        found += glob.glob(os.path.join(d, "cmeel.prefix", "lib", "libopenblas.so.0"))
    for d in {sys.prefix, sys.base_prefix}:
        found += glob.glob(os.path.join(d, "lib", "libmkl_rt.so*"))
    seen, out = set(), []
    for p in found:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _usable(path: str) -> bool:
    """Open privately first, check it has cblas_sgemm and a kernel this CPU can run."""
    try:
        lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    except OSError:  # a missing dependency such as libgfortran.so.5
        return False
    if not hasattr(lib, "cblas_sgemm"):
        return False
    if hasattr(lib, "openblas_get_corename"):
        lib.openblas_get_corename.restype = ctypes.c_char_p
        core = (lib.openblas_get_corename() or b"").upper()
        if core in _AVX512_CORES and "avx512f" not in _cpu_flags():
            return False
    return True


def preload() -> str | None:
    """Load the first usable CBLAS globally; returns its path, or None. Idempotent."""
    global _loaded, _library, _forwarder, _tried
    if _tried:
        return _loaded
    _tried = True
    choice = os.environ.get("SUBTITLER_BLAS", "").strip()
    if not sys.platform.startswith("linux") or choice.lower() in _OFF:
        return None
    if "mlx.core" in sys.modules:
        import warnings

        warnings.warn("mlx was imported before subtitler.whisper, so the optimized BLAS could not be loaded "
                      "and matrix work will be much slower: import subtitler.whisper first.", RuntimeWarning,
                      stacklevel=3)
        return None
    for path in [choice] if choice else _candidates():
        if _usable(path):
            forwarder = _forwarder_for(path)  # global before the BLAS, so its cblas_sgemm comes first
            try:
                _library = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                continue
            _loaded = path
            _forwarder = forwarder
            break
    if _loaded:
        _quiet_numpy_blas()
    return _loaded


def _quiet_numpy_blas() -> None:
    """Give NumPy's own BLAS (its wheels bundle an OpenBLAS of their own) one thread.

    The engine's heavy products go to the preloaded BLAS through MLX; NumPy's handles
    small ones (the mel projection), and its idle workers busy-wait for about 0.1 s
    after each, taking a core from the encoder that follows: an encoder window right
    after the mel projection took 512 ms (best of 8; median 529) instead of 476 (497)."""
    try:
        import numpy  # noqa: F401  (loads its BLAS)
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    ours = os.path.realpath(_loaded)
    for lib in ThreadpoolController().lib_controllers:
        if lib.user_api == "blas" and os.path.realpath(lib.filepath) != ours:
            lib.set_num_threads(1)


def _forwarder_for(path: str) -> ctypes.CDLL | None:
    """Load ``subtitler._gemv_forward`` in front of the BLAS at ``path``, if it was built.

    It is opened privately first and bound to the BLAS; only then does it join the
    global scope, so MLX can never reach a ``cblas_sgemm`` with nothing behind it.
    """
    if os.environ.get("SUBTITLER_GEMV_FORWARD", "").strip().lower() in _OFF:
        return None
    try:
        from . import _gemv_forward  # an extension module: importing it opens it (privately)

        lib = ctypes.CDLL(_gemv_forward.__file__, mode=ctypes.RTLD_LOCAL)
        if not lib.subtitler_gemv_forward_init(os.fsencode(path)):
            return None
        lib = ctypes.CDLL(_gemv_forward.__file__, mode=ctypes.RTLD_GLOBAL)
    except (ImportError, OSError, AttributeError):  # not built (no C compiler at install)
        return None
    lib.subtitler_gemv_forward_count.restype = ctypes.c_long
    return lib


def forwarding() -> bool:
    """Whether one-row products go to sgemv (``subtitler._gemv_forward`` is in front)."""
    return _forwarder is not None


def forwarded_count() -> int:
    """Products sent to sgemv so far (0 without the forwarder)."""
    return int(_forwarder.subtitler_gemv_forward_count()) if _forwarder is not None else 0


def set_forwarding(on: bool) -> None:
    """Turn the forwarding on or off at run time (for measurements and tests)."""
    if _forwarder is not None:
        _forwarder.subtitler_gemv_forward_enable(int(bool(on)))


def sgemm_address() -> int | None:
    """The address of the preloaded BLAS's own ``cblas_sgemm`` (not the forwarder's),
    for C code that calls it directly; None when no BLAS was preloaded."""
    return None if _library is None else ctypes.cast(_library.cblas_sgemm, ctypes.c_void_p).value


def rest_workers() -> None:
    """Stop the BLAS's idle worker threads before the host runs threads of its own.

    OpenBLAS's workers busy-wait for the next product for about 0.1 s after each one
    (its THREAD_TIMEOUT), so on a 2-core machine one of them holds a core while our
    own kernels split work over both: an encoder window with the C attention, same
    process, interleaved, min / lower quartile 380-404 / 429-473 ms without this,
    345-377 / 377-443 ms with it. The next product starts the workers again (the
    path OpenBLAS takes after a fork). Call it only when no product can be running:
    after the inputs of the host work were evaluated. No-op for other BLAS."""
    shutdown = _shutdown()
    if shutdown is not None:
        shutdown()


def rest_workers_address() -> int | None:
    """The address of the C function behind ``rest_workers``, for C code that calls
    it between its own steps; None where there is none."""
    shutdown = _shutdown()
    return None if shutdown is None else ctypes.cast(shutdown, ctypes.c_void_p).value


def _shutdown():
    """OpenBLAS's ``blas_thread_shutdown_`` in the preloaded BLAS, or None."""
    return getattr(_library, "blas_thread_shutdown_", None) if _library is not None else None


def loaded() -> str | None:
    """The CBLAS that was preloaded, if any."""
    return _loaded
