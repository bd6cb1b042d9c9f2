"""oneDNN's integer matrix product (``dnnl_gemm_u8s8s32``), from the ``onednn-cpu-gomp``
wheel: the int8 compute type's encoder and prompt products (``csrc/blocks.c``) call it.

Used only where the CPU has AVX-512 VNNI or AVX-VNNI (``has_vnni``): without it,
oneDNN adds pairs of u8 x s8 products in 16 bits, which can saturate, and 7-bit
activations would cost accuracy; AVX2 alone gets ours (``q8_gemm`` in ``csrc/blocks.c``,
with 11-bit activations). Linux x86-64 only;
elsewhere, or with ``SUBTITLER_DNNL=0``, ``address()`` is None.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_lib: ctypes.CDLL | None | bool = None


def _candidates() -> list[Path]:
    """Where pip puts the wheel's library: ``<prefix>/lib`` of this environment (its data files)."""
    dirs = [Path(sys.prefix) / "lib", Path(sys.base_prefix) / "lib"]
    if getattr(sys, "frozen", False):  # a PyInstaller bundle keeps it in its own lib/
        dirs.insert(0, Path(getattr(sys, "_MEIPASS", os.path.dirname(sys.executable))) / "lib")
    user = Path(os.path.expanduser("~/.local/lib"))
    return [d / name for d in (*dirs, user) for name in ("libdnnl.so.3", "libdnnl.so")]


def library() -> ctypes.CDLL | None:
    """oneDNN with the product's signature set, or None (not installed, not x86-64 Linux,
    or switched off)."""
    global _lib
    if _lib is None:
        _lib = False
        if os.environ.get("SUBTITLER_DNNL", "").strip().lower() in ("0", "off", "no", "false"):
            return None
        if not sys.platform.startswith("linux"):
            return None
        # Its OpenMP threads: the kernels' own count unless the user set one, and asleep
        # between products (spinning, they took the cores our attention runs on: the
        # int8 encoder was slower than float32's with them).
        from subtitler.engine.kernels import native

        os.environ.setdefault("OMP_NUM_THREADS", str(native.workers()))
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
        for path in _candidates():
            if not path.exists():
                continue
            try:
                lib = ctypes.CDLL(str(path))
                fn = lib.dnnl_gemm_u8s8s32
            except (OSError, AttributeError) as e:
                log.info("oneDNN at %s could not be loaded (%s)", path, e)
                continue
            L, P = ctypes.c_int64, ctypes.c_void_p
            fn.argtypes = [ctypes.c_char, ctypes.c_char, ctypes.c_char, L, L, L, ctypes.c_float, P, L]
            fn.argtypes += [ctypes.c_uint8, P, L, ctypes.c_int8, ctypes.c_float, P, L, P]
            fn.restype = ctypes.c_int
            F = ctypes.c_float
            lib.dnnl_sgemm.argtypes = [ctypes.c_char, ctypes.c_char, L, L, L, F, P, L, P, L, F, P, L]
            lib.dnnl_sgemm.restype = ctypes.c_int
            _lib = lib
            break
        else:
            log.info("oneDNN (pip install onednn-cpu-gomp) is not installed: no int8 encoder on this CPU")
    return _lib or None


def address() -> int | None:
    """The address of ``dnnl_gemm_u8s8s32`` for the C kernels, or None."""
    lib = library()
    return ctypes.cast(lib.dnnl_gemm_u8s8s32, ctypes.c_void_p).value if lib is not None else None


def product(a: np.ndarray, w: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``w`` (n, k) times ``a`` (m, k) transposed, plus ``bias`` (n) per row: (n, m)
    float32, by oneDNN's sgemm (the cross-attention keys and values, transposed as the
    decoder reads them)."""
    sgemm = library().dnnl_sgemm
    a, w = np.ascontiguousarray(a, np.float32), np.ascontiguousarray(w, np.float32)
    (n, k), m = w.shape, a.shape[0]
    out = np.empty((n, m), np.float32)
    if bias is not None:
        out[:] = np.asarray(bias, np.float32)[:, None]
    sgemm(b"N", b"T", n, m, k, 1.0, w.ctypes.data, k, a.ctypes.data, k, 0.0 if bias is None else 1.0,
          out.ctypes.data, m)  # fmt: skip
    return out


def product_into(a: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """``out`` (m, n) = ``a`` (m, k) times ``w`` (n, k) transposed, by oneDNN's sgemm (the
    same bits whatever the thread count); ``out`` may be a block of a wider array's columns."""
    a, w = np.ascontiguousarray(a, np.float32), np.ascontiguousarray(w, np.float32)
    (m, k), n = a.shape, w.shape[0]
    if out.shape != (m, n) or out.dtype != np.float32 or out.strides[1] != 4 or out.strides[0] % 4:
        raise ValueError("product_into writes float32 rows of contiguous columns")
    library().dnnl_sgemm(b"N", b"T", m, n, k, 1.0, a.ctypes.data, k, w.ctypes.data, k, 0.0,
                         out.ctypes.data, out.strides[0] // 4)  # fmt: skip


def sgemm_address() -> int | None:
    """A CBLAS-style sgemm over oneDNN's (``dnnl_sgemm_as_cblas`` in csrc/blocks.c), for
    the C kernels of the int8 compute type: its results do not change with the thread
    count (an OpenBLAS sgemm's last bits do, and the encoder's quantized activations
    turn such a bit into a different subtitle between a batch's workers and one process).
    None without oneDNN or the kernels."""
    from subtitler.engine.kernels import native

    lib, kernels = library(), native.library()
    if lib is None or kernels is None:
        return None
    kernels.set_dnnl_sgemm(ctypes.cast(lib.dnnl_sgemm, ctypes.c_void_p).value)
    return ctypes.cast(kernels.dnnl_sgemm_as_cblas, ctypes.c_void_p).value


@lru_cache(maxsize=1)
def has_vnni() -> bool:
    """Whether the CPU adds u8 x s8 products in 32 bits (AVX-512 VNNI or AVX-VNNI)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_vnni", "avx_vnni"})
