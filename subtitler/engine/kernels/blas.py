"""Load a fast CBLAS into the process before MLX is first imported (Linux CPU).

MLX's Linux CPU wheel links a reference BLAS that runs matmul at a few GFLOP/s.
A library loaded earlier into the global symbol scope that exports ``cblas_sgemm``
takes over MLX's products. Order tried (first usable wins):

1. ``$SUBTITLER_BLAS`` (a path; ``0``/``off`` turns all of this off);
2. a system OpenBLAS or MKL (``libopenblas.so.0``, ``libmkl_rt``), when installed;
3. the ``scipy-openblas32`` wheel, a dependency on Linux: OpenBLAS built with
   DYNAMIC_ARCH for every x86-64 and arm64 CPU, its symbols renamed ``scipy_cblas_*``;
4. NumPy's own bundled OpenBLAS (``scipy_cblas_sgemm64_``: 64-bit integers);
5. the ``cmeel-openblas`` wheel where its fixed SkylakeX kernel runs.

The renamed ones are reached through ``subtitler.engine.kernels._gemv_forward`` (a small
C extension built at install, see its source): it exports ``cblas_sgemm`` itself and
calls the BLAS's own by whatever name and integer width it has. It also sends the
one-row products of a decoding step to ``sgemv`` (quicker: benchmarks/README.md);
``SUBTITLER_GEMV_FORWARD=0`` turns that forwarding off, and then it only bridges.
Without the forwarder (no C compiler at install) only the plainly named ones can
be used. ``describe()`` says what is in use (``subtitler doctor`` prints it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import sys
import sysconfig
from dataclasses import dataclass

_OFF = ("0", "off", "no", "false", "none")

# OpenBLAS builds without DYNAMIC_ARCH are fixed to one kernel; these need AVX-512.
_AVX512_CORES = {b"SKYLAKEX", b"COOPERLAKE", b"SAPPHIRERAPIDS"}


@dataclass(frozen=True)
class Blas:
    """A CBLAS library and how its ``cblas_sgemm`` is named."""

    path: str
    kind: str  # "system", "mkl", "scipy-openblas32", "numpy", "cmeel", "chosen"
    prefix: str = ""
    suffix: str = ""
    ilp64: bool = False

    def symbol(self, name: str) -> str:
        return f"{self.prefix}{name}{self.suffix}"

    @property
    def renamed(self) -> bool:
        return bool(self.prefix or self.suffix or self.ilp64)


_loaded: Blas | None = None
_library: ctypes.CDLL | None = None  # the preloaded BLAS
_forwarder: ctypes.CDLL | None = None  # in front of the BLAS: a bridge, and maybe sgemv forwarding
_forwarding = False
_tried = False


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
    if getattr(sys, "frozen", False):  # a PyInstaller bundle keeps the wheels' folders in its own
        dirs.add(getattr(sys, "_MEIPASS", os.path.dirname(sys.executable)))
    return sorted(dirs)


def _candidates() -> list[Blas]:
    found: list[Blas] = []
    for name in ("libopenblas.so.0", "libopenblas.so"):
        for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"):
            p = os.path.join(d, name)
            if os.path.exists(p):
                found.append(Blas(p, "system"))
    lib = ctypes.util.find_library("openblas")
    if lib:
        found.append(Blas(lib, "system"))
    for d in {sys.prefix, sys.base_prefix}:
        found += [Blas(p, "mkl") for p in glob.glob(os.path.join(d, "lib", "libmkl_rt.so*"))]
    for d in _site_dirs():
        found += [
            Blas(p, "scipy-openblas32", prefix="scipy_")
            for p in glob.glob(os.path.join(d, "scipy_openblas32", "lib", "libscipy_openblas*.so"))
        ]
    for d in _site_dirs():
        found += [
            Blas(p, "numpy", prefix="scipy_", suffix="64_", ilp64=True)
            for p in glob.glob(os.path.join(d, "numpy.libs", "libscipy_openblas64_*.so"))
        ]
    for d in _site_dirs():
        found += [
            Blas(p, "cmeel") for p in glob.glob(os.path.join(d, "cmeel.prefix", "lib", "libopenblas.so.0"))
        ]
    seen, out = set(), []
    for b in found:
        if b.path not in seen:
            seen.add(b.path)
            out.append(b)
    return out


def _usable(blas: Blas) -> bool:
    """Open privately first, check it has the sgemm and a kernel this CPU can run."""
    try:
        lib = ctypes.CDLL(blas.path, mode=ctypes.RTLD_LOCAL)
    except OSError:  # a missing dependency such as libgfortran.so.5
        return False
    if not hasattr(lib, blas.symbol("cblas_sgemm")):
        return False
    corename = getattr(lib, blas.symbol("openblas_get_corename"), None)
    if corename is not None:
        corename.restype = ctypes.c_char_p
        core = (corename() or b"").upper()
        if core in _AVX512_CORES and "avx512f" not in _cpu_flags():
            return False
    return True


def _chosen(path: str) -> Blas:
    """``$SUBTITLER_BLAS``: a path, named plainly or as one of the wheels names it."""
    for b in _candidates():
        if os.path.realpath(b.path) == os.path.realpath(path):
            return b
    try:
        lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    except OSError:
        return Blas(path, "chosen")
    if hasattr(lib, "scipy_cblas_sgemm64_"):
        return Blas(path, "chosen", prefix="scipy_", suffix="64_", ilp64=True)
    if hasattr(lib, "scipy_cblas_sgemm"):
        return Blas(path, "chosen", prefix="scipy_")
    return Blas(path, "chosen")


def preload() -> str | None:
    """Load the first usable CBLAS globally; returns its path, or None. Idempotent."""
    global _loaded, _library, _forwarder, _forwarding, _tried
    if _tried:
        return _loaded.path if _loaded else None
    _tried = True
    choice = os.environ.get("SUBTITLER_BLAS", "").strip()
    if not sys.platform.startswith("linux") or choice.lower() in _OFF:
        return None
    if "mlx.core" in sys.modules:
        import warnings

        warnings.warn(
            "mlx was imported before subtitler.engine.runtime.prepare(), so the optimized BLAS could "
            "not be loaded and matrix work will be much slower: call prepare() first.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    # OpenBLAS's idle workers spin for a while after each product, holding a core
    # that our own kernels want; wheels without blas_thread_shutdown_ (see
    # rest_workers) are told to sleep sooner. Read when the library starts.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    for blas in [_chosen(choice)] if choice else _candidates():
        if not _usable(blas):
            continue
        forward = os.environ.get("SUBTITLER_GEMV_FORWARD", "").strip().lower() not in _OFF
        forwarder = _forwarder_for(blas) if (forward or blas.renamed) else None
        if blas.renamed and forwarder is None:
            continue  # reachable only through the forwarder, which was not built
        if forwarder is not None:
            forwarder.subtitler_gemv_forward_enable(int(forward))
        try:
            _library = ctypes.CDLL(blas.path, mode=ctypes.RTLD_LOCAL if blas.renamed else ctypes.RTLD_GLOBAL)
        except OSError:
            continue
        if forwarder is not None:  # global before MLX, so its cblas_sgemm comes first
            ctypes.CDLL(forwarder._name, mode=ctypes.RTLD_GLOBAL)
        _loaded, _forwarder, _forwarding = blas, forwarder, forwarder is not None and forward
        break
    if _loaded:
        _quiet_numpy_blas()
    return _loaded.path if _loaded else None


def _quiet_numpy_blas() -> None:
    """Give NumPy's own BLAS (its wheels bundle an OpenBLAS of their own) one thread.

    The engine's heavy products go to the preloaded BLAS through MLX; NumPy's handles
    small ones (the mel projection), and its idle workers busy-wait for about 0.1 s
    after each, taking a core from the encoder that follows."""
    try:
        import numpy  # noqa: F401  (loads its BLAS)
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    ours = os.path.realpath(_loaded.path)
    for lib in ThreadpoolController().lib_controllers:
        if lib.user_api == "blas" and os.path.realpath(lib.filepath) != ours:
            lib.set_num_threads(1)


def _forwarder_for(blas: Blas) -> ctypes.CDLL | None:
    """``subtitler.engine.kernels._gemv_forward`` bound to ``blas``, opened privately, or
    None where it was not built. The caller puts it in the global scope after the
    BLAS, so MLX can never reach a ``cblas_sgemm`` with nothing behind it."""
    try:
        # an extension module: importing it opens it (privately)
        from subtitler.engine.kernels import _gemv_forward

        lib = ctypes.CDLL(_gemv_forward.__file__, mode=ctypes.RTLD_LOCAL)
        if not lib.subtitler_gemv_forward_init(
            os.fsencode(blas.path), blas.prefix.encode(), blas.suffix.encode(), int(blas.ilp64)
        ):
            return None
    except (ImportError, OSError, AttributeError):  # not built (no C compiler at install)
        return None
    lib.subtitler_gemv_forward_count.restype = ctypes.c_long
    return lib


def forwarding() -> bool:
    """Whether one-row products go to sgemv (the forwarder is in front, forwarding)."""
    return _forwarding


def forwarded_count() -> int:
    """Products sent to sgemv so far (0 without the forwarder)."""
    return int(_forwarder.subtitler_gemv_forward_count()) if _forwarder is not None else 0


def set_forwarding(on: bool) -> None:
    """Turn the forwarding on or off at run time (for measurements and tests)."""
    global _forwarding
    if _forwarder is not None:
        _forwarder.subtitler_gemv_forward_enable(int(bool(on)))
        _forwarding = bool(on)


def mlx_sgemm_address() -> int | None:
    """The address of the ``cblas_sgemm`` that MLX binds to: the forwarder's when it
    is in front, else the BLAS's own; None when nothing was preloaded."""
    lib = _forwarder if _forwarder is not None else _library
    return None if lib is None else ctypes.cast(lib.cblas_sgemm, ctypes.c_void_p).value


def sgemm_address() -> int | None:
    """The address of a ``cblas_sgemm`` with 32-bit integers that goes straight to the
    preloaded BLAS (no sgemv forwarding), for C code that calls it directly; None
    when no BLAS was preloaded."""
    if _library is None:
        return None
    fn = _forwarder.subtitler_blas_sgemm if _loaded.renamed else _library.cblas_sgemm
    return ctypes.cast(fn, ctypes.c_void_p).value


_SGEMM = ctypes.CFUNCTYPE(
    None,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_float,
    ctypes.c_void_p,
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_int,
    ctypes.c_float,
    ctypes.c_void_p,
    ctypes.c_int,
)
_sgemm_fn = None


def product(a, w, out=None):
    """``a @ w.T`` for float32 ``a`` (m, k) and ``w`` (n, k) (a layer's weight as stored),
    through the preloaded BLAS on all its threads, NumPy's product (one thread, see
    ``_quiet_numpy_blas``) when none was preloaded. ``a`` and ``out`` (m, n) may be views
    whose rows are apart (contiguous columns): they are read and written in place."""
    import numpy as np

    global _sgemm_fn
    address = sgemm_address()
    m, k = a.shape
    n = w.shape[0]

    def rows_apart(x) -> bool:
        return (
            x.dtype == np.float32
            and x.strides[1] == 4
            and x.strides[0] % 4 == 0
            and x.strides[0] >= 4 * x.shape[1]
        )

    if address is None or max(m, n, k) >= 2**31:
        if out is None:
            return a @ w.T
        np.matmul(a, w.T, out=out)
        return out
    if _sgemm_fn is None or ctypes.cast(_sgemm_fn, ctypes.c_void_p).value != address:
        _sgemm_fn = _SGEMM(address)
    if not rows_apart(a):
        a = np.ascontiguousarray(a, np.float32)
    w = np.ascontiguousarray(w, np.float32)
    target = out if out is not None and rows_apart(out) else np.empty((m, n), np.float32)
    if m and n:
        _sgemm_fn(
            101,
            111,
            112,
            m,
            n,
            k,
            1.0,
            a.ctypes.data,
            a.strides[0] // 4,
            w.ctypes.data,
            k,
            0.0,
            target.ctypes.data,
            target.strides[0] // 4,
        )
    if out is not None and target is not out:
        out[...] = target
        return out
    return target


def rest_workers() -> None:
    """Stop the BLAS's idle worker threads before the host runs threads of its own.

    OpenBLAS's workers busy-wait for the next product for about 0.1 s after each one
    (its THREAD_TIMEOUT), so on a 2-core machine one of them holds a core while our
    own kernels split work over both. The next product starts the workers again (the
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
    """OpenBLAS's ``blas_thread_shutdown_`` in the preloaded BLAS, or None (the
    scipy-openblas32 wheel does not export it; its workers sleep sooner instead)."""
    if _library is None:
        return None
    return getattr(_library, "blas_thread_shutdown_", None) or getattr(
        _library, _loaded.symbol("blas_thread_shutdown_"), None
    )


def expected() -> bool:
    """Whether the C kernels have a BLAS: the one ``preload`` loaded, or, before it has
    run, whether it will look for one (not on other systems, nor with SUBTITLER_BLAS=0)."""
    if _tried:
        return sgemm_address() is not None
    switched_off = os.environ.get("SUBTITLER_BLAS", "").strip().lower() in _OFF
    return sys.platform.startswith("linux") and not switched_off


def loaded() -> str | None:
    """The path of the CBLAS that was preloaded, if any."""
    return _loaded.path if _loaded else None


def describe() -> dict:
    """What runs the matrix products, for ``subtitler doctor`` and the benchmarks."""
    if _loaded is None:
        why = (
            "off (SUBTITLER_BLAS)"
            if os.environ.get("SUBTITLER_BLAS", "").strip().lower() in _OFF
            else "none found"
        )
        return {"blas": f"MLX's reference BLAS ({why}): slow", "one-row products": "sgemm"}
    core = None
    corename = getattr(_library, _loaded.symbol("openblas_get_corename"), None)
    if corename is not None:
        corename.restype = ctypes.c_char_p
        core = (corename() or b"").decode()
    return {
        "blas": f"{_loaded.kind}: {_loaded.path}" + (f" (kernel {core})" if core else ""),
        "one-row products": "sgemv (forwarder)" if _forwarding else "sgemm",
        "bridge": "forwarder" if _loaded.renamed else "direct",
    }
