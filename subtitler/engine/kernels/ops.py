"""Work the MLX CPU backend does slowly, done another way on the CPU.

MLX's Linux CPU kernels compute ``exp`` and ``erf`` one float at a time, while its
arithmetic ops are vectorized. So the encoder's attention softmax runs ``exp`` in
place on the host, split over the cores; GELU is a rational ``erf`` of multiplies and
adds fused by ``mx.compile``; and a decoding step's ``logsumexp`` over the vocabulary
is NumPy's, on a view of the logits. The step's small softmaxes stay with
``mx.softmax`` (a Cephes ``exp`` of MLX operations made greedy decoding slower).
Figures: benchmarks/README.md, "Figures moved out of the docstrings".

``mx.compile`` fuses element-wise chains on the CPU by generating C++ and building
it with the system compiler on first use (cached in the temp folder; without a
compiler MLX runs the ops unfused). ``warm_up`` does that at model load.

The encoder's big exp and GELU passes go further, to ``_kernels`` (a small C
extension built at install, vectorized for AVX2 where the CPU has it) when it was
built. Without it, NumPy and MLX do them as above.
It also has the long attention (a kernel of its own for heads of 64, or head by
head through the BLAS's ``sgemm``: see ``attention``), the encoder's layer norms,
and the decoding step's output embedding read in float16 (``logits``).

On a GPU, and for other dtypes, every function here uses MLX's own kernels.

Where the C kernels run (x86 with AVX2, a BLAS preloaded), whole stages go to C
instead: the encoder and a prompt (``cpu_blocks``) and each decoding step
(``cpu_decoder``). The functions here then serve what stays with MLX: word
alignment, and every stage elsewhere.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from subtitler.engine.kernels import blas as _blas
from subtitler.engine.kernels import native

# erf(x) ~ x P(x^2) / Q(x^2) on [-4, 4] (the float32 approximation Eigen and XLA use;
# outside that range erf is +-1 to float precision). Max error here 5e-7.
_ERF_P = (
    -2.72614225801306e-10,
    2.77068142495902e-08,
    -2.10102402082508e-06,
    -5.69250639462346e-05,
    -7.34990630326855e-04,
    -2.95459980854025e-03,
    -1.60960333262415e-02,
)
_ERF_Q = (
    -1.45660718464996e-05,
    -2.13374055278905e-04,
    -1.68282697438203e-03,
    -7.37332916720468e-03,
    -1.42647390514189e-02,
)


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
    if x.size >= _HOST_MIN and native.library() is not None:
        return _gelu_host(x)
    return _gelu_rational(x)


_HOST_MIN = 1 << 16  # below this many values (a decoding step's) MLX's own kernels: no host round trip


def _gelu_host(x: mx.array) -> mx.array:
    """GELU by the C kernel on an evaluated ``x``, its values split over the cores."""
    src = host_view(x).reshape(-1)
    out = np.empty_like(src)
    lib = native.library()
    _map(
        lambda ab: lib.gelu(src[ab[0] :].ctypes.data, out[ab[0] :].ctypes.data, ab[1] - ab[0]),
        _spans(src.size),
    )
    return mx.array(out.reshape(x.shape))


def layer_norm(x: mx.array, norm: nn.LayerNorm) -> mx.array:
    """``norm(x)``; over the encoder's (1500, 384) rows by the C kernel, split over the
    cores (nine a window)."""
    lib = native.library()
    if not (applies(x) and x.size >= _HOST_MIN and lib is not None and "weight" in norm and "bias" in norm):
        return norm(x)
    src = host_view(x).reshape(-1, x.shape[-1])
    if not src.flags.c_contiguous:
        src = np.ascontiguousarray(src)
    out = np.empty_like(src)
    weight, bias = host_view(norm.weight), host_view(norm.bias)
    _map(
        lambda ab: lib.layer_norm(
            src[ab[0] :].ctypes.data,
            out[ab[0] :].ctypes.data,
            ab[1] - ab[0],
            src.shape[1],
            weight.ctypes.data,
            bias.ctypes.data,
            norm.eps,
        ),
        _spans(src.shape[0]),
    )
    return mx.array(out.reshape(x.shape))


def logsumexp(x):
    """log(sum(exp(x))) over the last axis, kept; rows of -inf give -inf. ``x``: an
    MLX or a NumPy array; the result is of the same kind.

    Over a whole vocabulary on the CPU, the host computes it from a view of the
    evaluated logits: this waits for them, but the step that made them is done
    by the time the rules need them anyway."""
    if isinstance(x, np.ndarray):
        return _logsumexp_host(x)
    if not (applies(x) and x.size >= 4096):
        return mx.logsumexp(x, axis=-1, keepdims=True)
    return mx.array(_logsumexp_host(host_view(x)))


def _logsumexp_host(a: np.ndarray) -> np.ndarray:
    """By the C kernel where it was built (one read of the logits, a vectorized exp;
    NumPy's makes two temporaries and a scalar exp), many rows over the workers."""
    lib = native.library()
    if lib is not None and a.dtype == np.float32 and a.ndim >= 1 and a.size:
        rows = a.reshape(-1, a.shape[-1])
        if not rows.flags.c_contiguous:
            rows = np.ascontiguousarray(rows)
        n, cols = rows.shape
        out = np.empty((n, 1), np.float32)
        if n < 32:  # a step's rows: splitting costs more than it saves
            lib.logsumexp_rows(rows.ctypes.data, n, cols, cols, out.ctypes.data)
        else:
            _map(
                lambda ab: lib.logsumexp_rows(
                    rows[ab[0] :].ctypes.data, ab[1] - ab[0], cols, cols, out[ab[0] :].ctypes.data
                ),
                _spans(n),
            )
        return out.reshape(*a.shape[:-1], 1)
    peak = a.max(axis=-1, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    with np.errstate(divide="ignore"):  # log(0) = -inf for a fully masked row
        return np.log(np.exp(a - peak).sum(axis=-1, keepdims=True)) + peak


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def host_view(x: mx.array) -> np.ndarray:
    """A NumPy array over the memory of the evaluated ``x`` (CPU), without a copy.
    Through ``memoryview``, so NumPy 1.x cannot silently copy instead."""
    mx.eval(x)
    return np.asarray(memoryview(x))


def host_array(x: mx.array) -> np.ndarray:
    """The evaluated ``x`` as a contiguous float32 host array: a view of its memory
    when it is laid out so already (weights), else a copy."""
    v = host_view(x)
    return v if v.dtype == np.float32 and v.flags.c_contiguous else np.ascontiguousarray(v, np.float32)


class HostArrays:
    """Host arrays handed to C code by address, kept alive as long as this is (each
    kernel object holds its own, so dropping a model frees its arrays)."""

    def __init__(self):
        self._arrays: list[np.ndarray] = []

    def pointer(self, a) -> int:
        """The address of ``a`` (an evaluated MLX array, as ``host_array``; or a host
        array, as it is)."""
        v = a if isinstance(a, np.ndarray) else host_array(a)
        self._arrays.append(v)
        return v.ctypes.data


def _exp_rows_inplace(a: np.ndarray) -> np.ndarray:
    """exp(a - max) over the last axis of a 2-D array with contiguous rows, in place;
    returns the row sums (n, 1). A row of -inf gives zeros and a sum of 0."""
    lib = native.library()
    if lib is not None and a.dtype == np.float32 and a.strides[1] == 4:
        sums = np.empty((a.shape[0], 1), np.float32)
        lib.softmax_rows_exp(a.ctypes.data, a.shape[0], a.shape[1], a.strides[0] // 4, sums.ctypes.data)
        return sums
    peak = a.max(axis=-1, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0).astype(a.dtype)
    np.subtract(a, peak, out=a)
    np.exp(a, out=a)
    return a.sum(axis=-1, keepdims=True)


def _spans(n: int, min_size: int = 1) -> list[tuple[int, int]]:
    """[0, n) cut into one span per worker thread (fewer, so each has ``min_size``)."""
    parts = min(native.workers(), max(1, n // min_size))
    bounds = np.linspace(0, n, parts + 1).astype(int).tolist()
    return list(zip(bounds[:-1], bounds[1:]))


def _map(fn, parts: list) -> list:
    """``fn`` over ``parts`` on the worker threads (NumPy and ctypes release the GIL)."""
    global _pool
    if len(parts) == 1:
        return [fn(parts[0])]
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(native.workers(), thread_name_prefix="subtitler-cpu")
    return list(_pool.map(fn, parts))


def attention(q: mx.array, kt: mx.array, v: mx.array, scale: float, mask=None) -> mx.array:
    """softmax(scale * q @ kt + mask) @ v for long attention on the CPU (the encoder's,
    and the decoder's over a prompt), with the heads merged: ``q`` (B, H, T, D), ``kt``
    (B, H, D, S) and ``v`` (B, H, S, D), views of any strides, give (B, T, H*D).

    With the C kernels and a preloaded BLAS, ``_kernels`` does it head by head,
    reading the operands where they lie, with no copies of strided heads and the
    output written merged: for heads of 64 (every Whisper model) with its own
    kernel, ``attention_d64``, otherwise through the BLAS's ``sgemm``
    (``attention_heads``); ``attention_d64`` is the faster (figures:
    benchmarks/README.md).

    Otherwise MLX computes the scores and they are exponentiated in place through a
    NumPy view (their buffer is private to this call), rows split over the cores,
    with the normalisation applied to the (T, D) output instead of the (T, S) weights.
    """
    sgemm = _blas.sgemm_address()
    if q.shape[0] == 1 and sgemm and native.library() is not None:
        return _attention_heads(q, kt, v, scale, mask, sgemm)
    scores = mx.contiguous((q * scale) @ kt if mask is None else (q * scale) @ kt + mask)
    view = host_view(scores)
    if not view.flags.c_contiguous:  # a reshape would copy, and the softmax land elsewhere
        raise RuntimeError("attention scores are not contiguous")
    flat = view.reshape(-1, view.shape[-1])
    sums = np.concatenate(_map(_exp_rows_inplace, [flat[a:b] for a, b in _spans(flat.shape[0], min_size=64)]))
    sums = mx.array(sums.reshape(*view.shape[:-1], 1))
    o = (scores @ v) / sums
    return o.transpose(0, 2, 1, 3).reshape(o.shape[0], o.shape[2], -1)


def _head_layout(a: np.ndarray, transposable: bool = False) -> tuple[np.ndarray, int, int, bool]:
    """``a`` (H, R, C) as the C kernel takes it: the array (copied only when its
    values are not evenly laid out), its head and row strides in floats, and
    whether its rows run along the second axis instead (``transposable`` only)."""
    f = a.itemsize
    if a.dtype == np.float32 and a.strides[2] == f and a.strides[0] % f == 0 and a.strides[1] % f == 0:
        return a, a.strides[0] // f, a.strides[1] // f, False
    if (
        transposable
        and a.dtype == np.float32
        and a.strides[1] == f
        and a.strides[0] % f == 0
        and a.strides[2] % f == 0
    ):
        return a, a.strides[0] // f, a.strides[2] // f, True
    a = np.ascontiguousarray(a, np.float32)
    return a, a.strides[0] // f, a.strides[1] // f, False


D64_KERNEL = True  # heads of 64 by attention_d64 (tests and measurements switch it off)


def _attention_heads(q, kt, v, scale, mask, sgemm) -> mx.array:
    """``attention`` for one batch row by the C kernels, on host views of the operands."""
    mx.eval(q, kt, v, *(() if mask is None else (mask,)))
    _, h, t, d = q.shape
    s = kt.shape[-1]
    qa, q_head, ldq, _ = _head_layout(host_view(q)[0])
    ka, k_head, ldk, k_transposed = _head_layout(host_view(kt)[0], transposable=True)
    va, v_head, ldv, v_transposed = _head_layout(host_view(v)[0], transposable=True)
    m = None
    if mask is not None:
        m = np.ascontiguousarray(np.broadcast_to(host_view(mask), (t, s)), np.float32)
    out = np.empty((t, h * d), np.float32)
    lib = native.library()
    if d == 64 and D64_KERNEL:
        _blas.rest_workers()  # its threads would share the cores with the BLAS's idle ones
        if (
            lib.attention_d64(
                h,
                t,
                s,
                float(scale),
                qa.ctypes.data,
                q_head,
                ldq,
                ka.ctypes.data,
                k_head,
                ldk,
                int(not k_transposed),
                va.ctypes.data,
                v_head,
                ldv,
                int(v_transposed),
                out.ctypes.data,
                h * d,
                None if m is None else m.ctypes.data,
                native.workers(),
            )
            == native.OK
        ):
            return mx.array(out)[None]
        # -1: no AVX2 here, -2: out of memory; either way the sgemm path below
    scores, sums = np.empty(t * s, np.float32), np.empty(t, np.float32)
    lib.attention_heads(
        sgemm,
        h,
        t,
        s,
        d,
        float(scale),
        qa.ctypes.data,
        q_head,
        ldq,
        ka.ctypes.data,
        k_head,
        ldk,
        int(not k_transposed),
        va.ctypes.data,
        v_head,
        ldv,
        int(v_transposed),
        out.ctypes.data,
        h * d,
        None if m is None else m.ctypes.data,
        scores.ctypes.data,
        sums.ctypes.data,
        native.workers(),
    )
    return mx.array(out)[None]


def half_table(w: mx.array, source: np.ndarray | None = None) -> np.ndarray | None:
    """``w`` (rows, k) as float16 for ``logits``, when the C kernels run on this CPU
    and float16 holds every value exactly (Whisper's weights are published in float16,
    so this is the float32 table in half the memory); otherwise None. ``source``: the
    float16 table ``w`` was converted from, when the weights were read so (exact by
    construction: no conversion back and check)."""
    lib = native.library()
    if lib is None or not lib.logits_f16_supported() or not applies(w) or w.ndim != 2:
        return None
    if source is not None and source.dtype == np.float16 and source.shape == tuple(w.shape):
        return np.ascontiguousarray(source)
    return exact_half(w)


def exact_half(w: mx.array) -> np.ndarray | None:
    """The float32 ``w`` as a contiguous float16 host array when float16 holds every
    value exactly, else None."""
    full = host_view(w)
    half = np.ascontiguousarray(full, np.float16)
    return half if np.array_equal(half.astype(np.float32), full) else None


LOGITS_MAX_ROWS = native.MAX_ROWS


def quantize_rows(
    w, columns: np.ndarray | None = None, dot_with: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """``w`` (rows, k), each column times ``columns`` when given, as int8 with a float32
    scale per row (symmetric, the row's largest magnitude to 127, rounded to nearest):
    ``w * columns ~ q * scale[:, None]``. A row of zeros gets scale 1. With ``dot_with``,
    also ``w @ dot_with`` (float32), from the same pass. ``w`` may be float16 (a table as
    read): no float32 copy of it is made. By the C kernels, split over the cores, where
    they were built."""
    a = host_view(w) if isinstance(w, mx.array) else np.asarray(w)
    if a.dtype not in (np.float16, np.float32):
        a = a.astype(np.float32)
    a = np.ascontiguousarray(a)
    cols = None if columns is None else np.ascontiguousarray(columns, np.float32)
    dot = None if dot_with is None else np.ascontiguousarray(dot_with, np.float32)
    q, scale = np.empty(a.shape, np.int8), np.empty(a.shape[0], np.float32)
    dots = np.empty(a.shape[0], np.float32) if dot is not None else None
    lib = native.library()
    if lib is not None:
        lib.quantize_rows_q8(
            a.ctypes.data, int(a.dtype == np.float16), None if cols is None else cols.ctypes.data,
            None if dot is None else dot.ctypes.data, None if dots is None else dots.ctypes.data,
            *a.shape, q.ctypes.data, scale.ctypes.data, native.workers(),
        )  # fmt: skip
    else:
        for lo in range(0, a.shape[0], 4096):  # a block of rows at a time in float32
            block = a[lo : lo + 4096].astype(np.float32)
            if dots is not None:
                dots[lo : lo + 4096] = block @ dot
            if cols is not None:
                block *= cols[None, :]
            peak = np.abs(block).max(axis=1)
            scale[lo : lo + 4096] = np.where(peak > 0, peak / 127.0, 1.0)
            q[lo : lo + 4096] = np.clip(np.rint(block / scale[lo : lo + 4096, None]), -127, 127)
    return (q, scale) if dots is None else (q, scale, dots)


class Int8Weights:
    """Weights quantized once however many kernels read them (the decoding step and the
    prompt's blocks share the decoder's): ``of(w, name)`` gives (int8 rows, scale per
    row, sum per row), made from ``w`` on first asking, or quantized already as the model
    loaded (``preset``, by parameter name: such a model holds no float32 products)."""

    def __init__(self, preset: dict[str, tuple] | None = None):
        self.preset = dict(preset or {})
        self._made: dict[int, tuple] = {}

    @staticmethod
    def quantize(w) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q, scale = quantize_rows(w)
        return q, scale, q.sum(axis=1, dtype=np.int32)

    def of(self, w, name: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if name is not None and name in self.preset:
            return self.preset[name]
        if id(w) not in self._made:
            self._made[id(w)] = (*self.quantize(w), w)  # w held: its id stays its own
        return self._made[id(w)][:3]


def product_q8(x: np.ndarray, q: np.ndarray, scale: np.ndarray, int16_inputs: bool = False) -> np.ndarray:
    """``x`` (n, k), n <= ``LOGITS_MAX_ROWS``, times the int8 rows ``q`` (rows, k) with
    their ``scale``, transposed: (n, rows) float32, by the C row kernel the decoding step
    uses (a prompt's last rows; tests against a reference). ``int16_inputs``: by integer
    products over ``x`` rounded to int16 (``rows_q8_int16``, the AVX2 step's)."""
    x = np.ascontiguousarray(x, np.float32)
    out = np.empty((x.shape[0], q.shape[0]), np.float32)
    lib = native.library()
    product = lib.product_q8_int16 if int16_inputs else lib.product_q8
    native.check(
        product(q.ctypes.data, scale.ctypes.data, *q.shape, x.ctypes.data, x.shape[0], out.ctypes.data),
        "the int8 product",
    )
    return out


def product_q8_rows(x: np.ndarray, q: np.ndarray, scale: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """``x`` (n, k), any n, times the int8 rows ``q`` (rows, k) with their ``scale``,
    transposed, plus ``bias``: (n, rows) float32 by integer products over ``x`` rounded
    to int16, the table read once for all of x (``gemm_q8_int16``: word timing's logits).
    Raises RuntimeError where ``rows_q8_int16`` does not run."""
    x = np.ascontiguousarray(x, np.float32)
    out = np.empty((x.shape[0], q.shape[0]), np.float32)
    native.check(
        native.library().gemm_q8_int16(
            x.shape[0],
            q.shape[0],
            q.shape[1],
            x.ctypes.data,
            q.ctypes.data,
            scale.ctypes.data,
            np.ascontiguousarray(bias, np.float32).ctypes.data,
            out.ctypes.data,
            native.workers(),
        ),
        "the int8 product",
    )
    return out


def logits(x: mx.array, table: np.ndarray) -> mx.array:
    """``x`` (..., k) times ``table`` (rows, k) transposed, in float32: the output
    embedding of a decoding step, up to ``LOGITS_MAX_ROWS`` inputs at once.

    The product only reads the table, so it is bound by memory: in float16 it reads
    half as much."""
    a = np.ascontiguousarray(host_view(x).reshape(-1, x.shape[-1]), np.float32)
    out = np.empty((a.shape[0], table.shape[0]), np.float32)
    if a.shape[0] > LOGITS_MAX_ROWS:
        raise ValueError(f"logits takes 1 to {LOGITS_MAX_ROWS} inputs, got {a.shape[0]}")
    native.check(
        native.library().logits_f16(
            table.ctypes.data,
            table.shape[0],
            table.shape[1],
            a.ctypes.data,
            a.shape[0],
            out.ctypes.data,
            native.workers(),
        ),
        "the output embedding",
    )
    return mx.array(out).reshape(*x.shape[:-1], table.shape[0])
