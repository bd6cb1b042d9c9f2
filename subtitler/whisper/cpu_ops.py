"""Element-wise work the MLX CPU backend does slowly, done another way on the CPU.

MLX's Linux CPU kernels compute ``exp`` and ``erf`` one float at a time (about
45 M/s here), while its arithmetic ops are vectorized. Measured on a 2-core AVX2
machine, per tiny.en encoder layer:

- the attention softmax over (6, 1500, 1500) scores: ``mx.softmax`` 200-240 ms;
  NumPy's ``exp`` in place on the same memory, split over the cores, 22 ms (NumPy's
  float32 ``exp`` is itself a scalar loop here, 0.45 G/s: see ``_cpu_kernels`` below);
- GELU over (1500, 1536): ``nn.gelu`` 73 ms; ``gelu`` below, a rational ``erf``
  made of multiplies and adds and fused by ``mx.compile``, 11 ms.
- ``logsumexp`` over a row of 51864 logits, once per decoding step:
  ``mx.logsumexp`` 1.3 ms; by NumPy on a view of the logits, about 0.15 ms.

The decoding step's small softmaxes stay with ``mx.softmax``: a Cephes ``exp`` made
of MLX operations was quicker alone, but its 30 operations a layer made greedy
decoding slower (10.5 vs 11.4 ms per token; beam 5 the same either way).

``mx.compile`` fuses element-wise chains on the CPU by generating C++ and building
it with the system compiler on first use (cached in the temp folder; without a
compiler MLX runs the ops unfused). ``warm_up`` does that at model load.

The encoder's big exp and GELU passes go further, to ``_cpu_kernels`` (a small C
extension built at install, vectorized for AVX2 where the CPU has it) when it was
built: per (1500, 1500) head, the softmax's exp pass 9.3 -> 2.7 ms on one thread;
GELU over (1500, 1536) 11.8 -> 1.5 ms. Without it, NumPy and MLX do them as above.

On a GPU, and for other dtypes, every function here uses MLX's own kernels.
"""

from __future__ import annotations

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import mlx.core as mx
import mlx.nn as nn
import numpy as np

# erf(x) ~ x P(x^2) / Q(x^2) on [-4, 4] (the float32 approximation Eigen and XLA use;
# outside that range erf is +-1 to float precision). Max error here 5e-7.
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)


def _erf_rational(x: mx.array) -> mx.array:
    x = mx.clip(x, -4.0, 4.0)
    x2 = x * x
    p = _ERF_P[0]
    for c in _ERF_P[1:]:
        p = p * x2 + c
    q = _ERF_Q[0]
    for c in _ERF_Q[1:]:
        q = q * x2 + c
    return x * p / q


@mx.compile
def _gelu_rational(x: mx.array) -> mx.array:
    return 0.5 * x * (1.0 + _erf_rational(x * 0.7071067811865476))


def warm_up() -> None:
    """Build the fused kernels now (about 3 s on a cold cache, milliseconds after)."""
    if on_cpu():
        mx.eval(gelu(mx.zeros((1, 2, 8))), gelu(mx.zeros((5, 1, 8))))


def on_cpu() -> bool:
    return mx.default_device() == mx.cpu


def applies(x: mx.array) -> bool:
    """Whether the replacements here apply to ``x``: float32 on the CPU."""
    return x.dtype == mx.float32 and on_cpu()


def gelu(x: mx.array) -> mx.array:
    """Exact (erf) GELU, as Whisper was trained with."""
    if not applies(x):
        return nn.gelu(x)
    if x.size >= _HOST_GELU_MIN and _kernels() is not None:
        return _gelu_host(x)
    return _gelu_rational(x)


_HOST_GELU_MIN = 1 << 16  # below this (a decoding step's 1536 values) MLX's fused kernel, no sync


def _gelu_host(x: mx.array) -> mx.array:
    """GELU by the C kernel on an evaluated ``x``, its values split over the cores."""
    src = host_view(x).reshape(-1)
    out = np.empty_like(src)
    lib = _kernels()
    bounds = np.linspace(0, src.size, _workers() + 1).astype(int)
    _map(lambda ab: lib.gelu(src[ab[0]:].ctypes.data, out[ab[0]:].ctypes.data, int(ab[1] - ab[0])),
         list(zip(bounds[:-1], bounds[1:])))
    return mx.array(out.reshape(x.shape))


def logsumexp(x: mx.array) -> mx.array:
    """log(sum(exp(x))) over the last axis, kept; rows of -inf give -inf.

    Over a whole vocabulary on the CPU, NumPy computes it from a view of the
    evaluated logits: this waits for them, but the step that made them is done
    by the time the rules need them anyway (greedy 19.6 -> 18.6 ms per token,
    beam 5 29.5 -> 27.0 ms per step, measured in one process)."""
    if not (applies(x) and x.size >= 4096):
        return mx.logsumexp(x, axis=-1, keepdims=True)
    a = host_view(x)
    peak = a.max(axis=-1, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):  # log(0) = -inf for a fully masked row
        return mx.array(np.log(np.exp(a - peak).sum(axis=-1, keepdims=True)) + peak)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def host_view(x: mx.array) -> np.ndarray:
    """A NumPy array over the memory of the evaluated ``x`` (CPU), without a copy.
    Through ``memoryview``, so NumPy 1.x cannot silently copy instead."""
    mx.eval(x)
    return np.asarray(memoryview(x))


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _exp_rows_inplace(a: np.ndarray) -> np.ndarray:
    """exp(a - max) over the last axis of a 2-D array with contiguous rows, in place;
    returns the row sums (n, 1). A row of -inf gives zeros and a sum of 0."""
    lib = _kernels()
    if lib is not None and a.dtype == np.float32 and a.strides[1] == 4:
        sums = np.empty((a.shape[0], 1), np.float32)
        lib.softmax_rows_exp(a.ctypes.data, a.shape[0], a.shape[1], a.strides[0] // 4, sums.ctypes.data)
        return sums
    peak = a.max(axis=-1, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0).astype(a.dtype)
    np.subtract(a, peak, out=a)
    np.exp(a, out=a)
    return a.sum(axis=-1, keepdims=True)


_lib = None


def _kernels():
    """The C kernels (``subtitler.whisper._cpu_kernels``) through ctypes, or None when
    they were not built (no C compiler at install) or ``SUBTITLER_CPU_KERNELS=0``."""
    global _lib
    if _lib is None:
        _lib = False
        if os.environ.get("SUBTITLER_CPU_KERNELS", "").strip().lower() not in ("0", "off", "no", "false"):
            try:
                from . import _cpu_kernels

                lib = ctypes.CDLL(_cpu_kernels.__file__)
                lib.softmax_rows_exp.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_long, ctypes.c_long,
                                                 ctypes.c_void_p]
                lib.gelu.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
                _lib = lib
            except (ImportError, OSError, AttributeError):
                pass
    return _lib or None


def _map(fn, parts: list) -> list:
    """``fn`` over ``parts`` on the worker threads (NumPy and ctypes release the GIL)."""
    global _pool
    if len(parts) == 1:
        return [fn(parts[0])]
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_workers(), thread_name_prefix="subtitler-cpu")
    return list(_pool.map(fn, parts))


def attention(q: mx.array, kt: mx.array, v: mx.array, mask=None) -> mx.array:
    """softmax(q @ kt + mask) @ v with the softmax by NumPy, for long attention on the
    CPU (the encoder's, and the decoder's over a prompt). ``q`` comes scaled and
    ``kt`` transposed, (..., T, D) and (..., D, S).

    The scores are computed here, so their buffer is private: it is exponentiated
    in place through a NumPy view (no copy), and the normalisation is applied to
    the (T, D) output instead of the (T, S) weights. Rows are split over the cores
    (NumPy releases the GIL in its loops).
    """
    scores = mx.contiguous(q @ kt if mask is None else q @ kt + mask)
    view = host_view(scores)
    if not view.flags.c_contiguous:  # a reshape would copy, and the softmax land elsewhere
        raise RuntimeError("attention scores are not contiguous")
    flat = view.reshape(-1, view.shape[-1])
    n = min(_workers(), max(1, flat.shape[0] // 64))
    bounds = np.linspace(0, flat.shape[0], n + 1).astype(int)
    sums = np.concatenate(_map(_exp_rows_inplace, [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:])]))
    sums = mx.array(sums.reshape(*view.shape[:-1], 1))
    return (scores @ v) / sums
