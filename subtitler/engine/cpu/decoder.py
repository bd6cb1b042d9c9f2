"""Decoding steps on the CPU by one C call each (``decoder_step`` in ``_cpu_decoder.c``).

MLX's CPU backend runs a decoding step of tiny.en as about 520 operations, each
dispatched to its stream's thread, each product a separate call into the BLAS; the
products themselves are a fraction of the step. The C step runs the same network
(embedding, self-attention over the cached positions, cross-attention over the
window, MLP, final norm, logits) as one program on two threads, reading each weight
matrix once for all rows. The steps of decoding run here; the prompt (hundreds of
positions at once) and word alignment stay with MLX.

Used on the CPU for float32 models with plain (not quantized) layers, where the C
kernels were built and the CPU has AVX2, FMA and F16C; elsewhere, and with
``SUBTITLER_CPU_KERNELS=0``, decoding runs through MLX as before. The weights are
read where MLX keeps them (NumPy views of the evaluated arrays, no copies).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Optional

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from subtitler.engine.cpu import blocks as cpu_blocks
from subtitler.engine.kernels import blas as _blas
from subtitler.engine.kernels import dnnl as _dnnl
from subtitler.engine.kernels import native
from subtitler.engine.kernels import ops as kernel_ops

_P = ctypes.c_void_p
_LAYER_FIELDS = (
    *cpu_blocks.LAYER_WEIGHTS,
    "prefix_k",
    "prefix_v",
    "own_k",
    "own_v",
    *(f"{name}_s" for name in cpu_blocks.PRODUCTS),  # the int8 products' scales
    "cross_k_scale",  # int8 cross keys and values: a scale per head and position
    "cross_v_scale",
)


_PRODUCTS = tuple(f"{name}_w" for name in cpu_blocks.PRODUCTS)


_Layer = native.pointers("_Layer", _LAYER_FIELDS)


class _Model(ctypes.Structure):
    _fields_ = [
        *(
            (name, ctypes.c_long)
            for name in (
                "n_state",
                "n_head",
                "n_layer",
                "n_vocab",
                "n_audio",
                "prefix",
                "rows",
                "capacity",
                "weights_kind",
            )
        ),
        ("eps", ctypes.c_float),
        *(
            (name, _P)
            for name in (
                "token_embedding",
                "embedding_f16",
                "positional_embedding",
                "ln_w",
                "ln_b",
                "history",
                "layers",
                "embedding_q8",
                "embedding_scale",
                "embedding_bias",
            )
        ),
        ("cross_kind", ctypes.c_long),
        ("int16_inputs", ctypes.c_long),
    ]


WEIGHTS_F32, WEIGHTS_F16, WEIGHTS_Q8 = 0, 1, 2  # the step's weights_kind (csrc/decoder.c)
CROSS_KINDS = ("float32", "float16", "int8")  # how the step reads the cross keys and values (its cross_kind)
COMPUTE_TYPES = ("float32", "int8")  # what the step's products read


MAX_ROWS = kernel_ops.LOGITS_MAX_ROWS
# Over more rows than this the int8 logits go by sgemm, the table widened TABLE_BLOCK rows
# at a time (1.5 MB for tiny, in cache): the row kernel wins up to about 16 rows (AVX2).
WIDENED_FROM_ROWS, TABLE_BLOCK = 16, 1024


def _integer_products(lib) -> bool:
    """Whether the int8 products here go by integer products over int16 inputs (AVX2
    without AVX-512: ``rows_q8_int16``)."""
    return bool(lib.rows_q8_int16_supported())


def _library():
    lib = native.library()
    if lib is None:
        return None
    return lib if lib.decoder_supported() else None


def _pointer(a: np.ndarray) -> int:
    return a.ctypes.data


class StepKernel:
    """The text decoder's weights as ``decoder_step`` reads them; ``session`` starts
    the steps of one window. ``compute_type`` "int8": the products and the output
    embedding read int8 weights with a scale per output row (a quarter of float32's
    memory; the step is bound by it), made here from the float32 weights (``int8``:
    shared with other kernels), and the tokens are looked up in the float16 table, so
    no float32 weight is read; ``embed`` and ``logits`` do the same for the host."""

    def __init__(
        self, decoder, lib, compute_type: str = "float32", int8: Optional[kernel_ops.Int8Weights] = None
    ):
        if compute_type not in COMPUTE_TYPES:
            raise ValueError(f"compute type {compute_type!r}: the C step takes {', '.join(COMPUTE_TYPES)}")
        self.lib, self.compute_type = lib, compute_type
        self._host = kernel_ops.HostArrays()  # what the pointers below point into
        first = decoder.blocks[0]
        self.n_state = first.attn.query.bias.shape[0]  # (the weights may be let go: int8)
        self.n_head = first.attn.n_head
        half = decoder.embedding_half
        table = decoder.token_embedding.weight
        self.n_vocab = table.shape[0] if table.size else half.shape[0]
        self.eps = float(first.attn_ln.eps)
        self._embedding_f16 = self._embedding_q8 = self._embedding_scale = self._embedding_bias = 0
        self._fold_ln = None
        self.positions = kernel_ops.host_array(decoder.positional_embedding)
        if compute_type == "int8":
            int8 = int8 or kernel_ops.Int8Weights()
            self.weights_kind = WEIGHTS_Q8
            self._layers = [
                self._layer(
                    b,
                    [
                        int8.of(w, f"decoder.blocks.{i}.{n}")[:2]
                        for w, n in zip(self._product_weights(b), cpu_blocks.PARAMETER_NAMES)
                    ],
                )
                for i, b in enumerate(decoder.blocks)
            ]
            # The output embedding with the final norm's weight folded in (its rows then
            # quantize what meets the normalized state: on tiny.en the logits' error fell
            # 4x) and its bias as a bias per logit; the step's final norm is then plain.
            e = kernel_ops.host_array(table) if table.size else half  # (float16: taken in blocks)
            w, b = kernel_ops.host_array(decoder.ln.weight), kernel_ops.host_array(decoder.ln.bias)
            self.table = kernel_ops.quantize_rows(e, columns=w, dot_with=b)  # (the bias: e @ b, same pass)
            q, scale, bias = self.table
            self._embedding_q8, self._embedding_scale = self._host.pointer(q), self._host.pointer(scale)
            self._embedding_bias = self._host.pointer(bias)
            self._fold_ln = (self._host.pointer(np.ones_like(w)), self._host.pointer(np.zeros_like(b)))
            del e
            self.half = half  # the lookups (None: the float32 table, as it was)
            self._embedding_f16 = 0 if half is None else self._host.pointer(half)
            self._token_embedding = self._host.pointer(table) if half is None else 0
        else:
            self._token_embedding = self._host.pointer(table)
            # The products' weights in float16 when that holds them exactly (Whisper's are
            # published so): the step reads half the memory.
            halves = [[kernel_ops.exact_half(w) for w in self._product_weights(b)] for b in decoder.blocks]
            f16 = all(h is not None for layer in halves for h in layer)
            self.weights_kind = WEIGHTS_F16 if f16 else WEIGHTS_F32
            self._layers = [
                self._layer(b, [(h, None) for h in halves_b] if f16 else None)
                for b, halves_b in zip(decoder.blocks, halves)
            ]
            self._embedding_f16 = 0 if half is None else self._host.pointer(half)
        self._positional = self._host.pointer(self.positions)
        final_norm = (self._host.pointer(decoder.ln.weight), self._host.pointer(decoder.ln.bias))
        self._ln = self._fold_ln or final_norm

    @property
    def reads_no_float32_weights(self) -> bool:
        """Whether the int8 step reads nothing of the decoder's float32 products and table."""
        return self.weights_kind == WEIGHTS_Q8 and self._token_embedding == 0

    def embed(self, tokens: list[int], offset: int = 0) -> np.ndarray:
        """The int8 step's first-block input for ``tokens`` (T,) at positions ``offset``..:
        (1, T, C), from the float16 table."""
        idx = np.asarray(tokens, np.int64)
        return (self.half[idx].astype(np.float32) + self.positions[offset : offset + idx.size])[None]

    def logits(self, x: np.ndarray) -> np.ndarray:
        """The int8 step's final norm and output embedding over any number of rows: x (R, C)
        -> (R, V) float32. By integer products where the step's run (``product_q8_rows``,
        AVX2; word timing's 100 text rows of tiny.en 31 -> 17 ms). Else a few rows (a
        prompt's last) by the row kernel, eight at a time, and more by sgemm over the
        table widened a block at a time, each block read once for all rows (3x the row
        kernel's speed at 200 rows, the same values to float32 rounding)."""
        x = np.asarray(x, np.float32)
        z = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + self.eps)
        q, scale, bias = self.table
        if _integer_products(self.lib):
            return kernel_ops.product_q8_rows(z, q, scale, bias)
        if z.shape[0] <= WIDENED_FROM_ROWS:
            out = np.concatenate(
                [kernel_ops.product_q8(z[i : i + MAX_ROWS], q, scale) for i in range(0, z.shape[0], MAX_ROWS)]
            )
        else:
            out = np.empty((z.shape[0], q.shape[0]), np.float32)
            product = _dnnl.product_into if _dnnl.library() else _blas.product
            for i in range(0, q.shape[0], TABLE_BLOCK):
                product(z, q[i : i + TABLE_BLOCK].astype(np.float32), out[:, i : i + TABLE_BLOCK])
            out *= scale
        return out + bias

    @classmethod
    def build(
        cls, decoder, compute_type: str = "float32", int8: Optional[kernel_ops.Int8Weights] = None
    ) -> Optional[StepKernel]:
        """The kernel for ``decoder``, or None where it does not apply (see the module)."""
        lib = _library()
        if (
            lib is None
            or type(decoder.token_embedding) is not nn.Embedding
            or not kernel_ops.applies(decoder.token_embedding.weight)
            or not cpu_blocks.plain(decoder.blocks, decoder.ln)
        ):
            return None
        return cls(decoder, lib, compute_type, int8)

    @staticmethod
    def _product_weights(b) -> tuple:
        """A block's product weights, in the order of ``_PRODUCTS``."""
        return (
            b.attn.fused_weights[0],
            b.attn.out.weight,
            b.cross_attn.query.weight,
            b.cross_attn.out.weight,
            b.mlp1.weight,
            b.mlp2.weight,
        )

    def _layer(self, b, stored) -> dict:
        """A block's pointers; ``stored``: its products' weights as the step reads them,
        (weights, scale per row or None) in the order of ``_PRODUCTS``, or None for MLX's own."""
        stored = stored or [(w, None) for w in self._product_weights(b)]
        scales = {name.replace("_w", "_s"): scale for name, (_, scale) in zip(_PRODUCTS, stored)}
        return {
            **{name: self._host.pointer(w) for name, (w, _) in zip(_PRODUCTS, stored)},
            **{name: 0 if scale is None else self._host.pointer(scale) for name, scale in scales.items()},
            "attn_ln_w": self._host.pointer(b.attn_ln.weight),
            "attn_ln_b": self._host.pointer(b.attn_ln.bias),
            "qkv_b": self._host.pointer(b.attn.fused_weights[1]),
            "attn_out_b": self._host.pointer(b.attn.out.bias),
            "cross_ln_w": self._host.pointer(b.cross_attn_ln.weight),
            "cross_ln_b": self._host.pointer(b.cross_attn_ln.bias),
            "cross_q_b": self._host.pointer(b.cross_attn.query.bias),
            "cross_out_b": self._host.pointer(b.cross_attn.out.bias),
            "mlp_ln_w": self._host.pointer(b.mlp_ln.weight),
            "mlp_ln_b": self._host.pointer(b.mlp_ln.bias),
            "mlp1_b": self._host.pointer(b.mlp1.bias),
            "mlp2_b": self._host.pointer(b.mlp2.bias),
        }

    def session(
        self,
        cross_kv,
        prefix,
        rows: int,
        capacity: int,
        cross: Optional[str] = None,
        int16_inputs: Optional[bool] = None,
    ) -> CpuSteps:
        """Steps of ``rows`` sequences over one window: ``cross_kv`` per layer (keys,
        values) transposed (1, H, D, S), as ``TextDecoder.cross_kv`` gives them;
        ``prefix`` per layer the keys and values (1, H, P, D), or host arrays (H, P, D),
        of the positions all rows share (the prompt); at most ``capacity`` steps.
        ``cross``: how the steps read ``cross_kv`` (``CROSS_KINDS``); by default int8 with
        int8 weights (a step of tiny.en reads 18 MB of them in float32, 4.6 in int8,
        beside its 8 MB of int8 products and 20-MB table; the weights' error is larger),
        else float32. ``int16_inputs``: the int8 products by integer products over the
        inputs rounded to int16 (``rows_q8_int16``), by default wherever that kernel runs
        (AVX2 without AVX-512)."""
        cross = cross or ("int8" if self.weights_kind == WEIGHTS_Q8 else "float32")
        if cross not in CROSS_KINDS:
            raise ValueError(f"cross keys and values in {cross!r}: the C step reads {', '.join(CROSS_KINDS)}")
        if int16_inputs is None:
            int16_inputs = self.weights_kind == WEIGHTS_Q8 and _integer_products(self.lib)
        return CpuSteps(self, cross_kv, prefix, rows, capacity, cross, int16_inputs)


def _heads(a) -> np.ndarray:
    """(1, H, X, Y) MLX or (H, X, Y) host arrays as a contiguous float32 (H, X, Y) host array."""
    # host_array(a)[0], not host_array(a[0]): an MLX slice would be an evaluation of its own
    return np.ascontiguousarray(a, np.float32) if isinstance(a, np.ndarray) else kernel_ops.host_array(a)[0]


def _int8_positions(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, D, S) float32 keys or values as int8 with a scale per head and position (H, S):
    each position's 64 values to its largest magnitude (``floats_to_q8_positions``)."""
    q, scale = np.empty(a.shape, np.int8), np.empty((a.shape[0], a.shape[2]), np.float32)
    native.check(
        _library().floats_to_q8_positions(a.ctypes.data, *a.shape, q.ctypes.data, scale.ctypes.data),
        "int8 rounding of the cross keys and values",
    )
    return q, scale


def _halves(a: np.ndarray) -> np.ndarray:
    """A float32 array's values rounded to float16, as uint16 bits (NumPy's conversion
    took 4 ms a layer's keys for tiny.en; F16C's, a tenth of that)."""
    out = np.empty(a.shape, np.uint16)
    native.check(_library().floats_to_halves(a.ctypes.data, out.ctypes.data, a.size), "float16 rounding")
    return out


class CpuSteps:
    """The decoding steps of one window: ``steps(tokens)`` appends a token to each row
    and returns the next logits; ``reorder`` makes rows continue other rows (beam
    search). Same interface as ``decoding.MlxSteps``."""

    def __init__(
        self,
        kernel: StepKernel,
        cross_kv,
        prefix,
        rows: int,
        capacity: int,
        cross: str = "float32",
        int16_inputs: bool = False,
    ):
        if not 1 <= rows <= MAX_ROWS:
            raise ValueError(f"the C step takes 1 to {MAX_ROWS} rows, got {rows}")
        self._kernel = kernel
        self.rows, self.length = rows, 0
        mx.eval(cross_kv, [p for p in prefix if isinstance(p[0], mx.array)])
        kv = [(_heads(k), _heads(v)) for k, v in cross_kv]
        scales = [(None, None)] * len(kv)
        if cross == "float16":
            kv = [(_halves(k), _halves(v)) for k, v in kv]
        elif cross == "int8":
            pairs = [(_int8_positions(k), _int8_positions(v)) for k, v in kv]
            kv = [(k[0], v[0]) for k, v in pairs]
            scales = [(k[1], v[1]) for k, v in pairs]
        pre = [(_heads(k), _heads(v)) for k, v in prefix]
        _, d, s = kv[0][0].shape
        h = kernel.n_head
        self._own = np.zeros((len(pre), 2, capacity, rows, h, d), np.float32)
        self._history = np.zeros((rows, capacity), np.int32)
        self._logits = np.empty((rows, kernel.n_vocab), np.float32)
        self._keep = (kv, scales, pre)
        layers = (_Layer * len(pre))()
        for i, spec in enumerate(kernel._layers):
            own_k, own_v = self._own[i]
            layers[i] = _Layer(
                **spec,
                cross_kt=_pointer(kv[i][0]),
                cross_vt=_pointer(kv[i][1]),
                cross_k_scale=None if scales[i][0] is None else _pointer(scales[i][0]),
                cross_v_scale=None if scales[i][1] is None else _pointer(scales[i][1]),
                prefix_k=_pointer(pre[i][0]),
                prefix_v=_pointer(pre[i][1]),
                own_k=_pointer(own_k),
                own_v=_pointer(own_v),
            )
        self._layers = layers
        _blas.rest_workers()  # the prompt's products are done; their idle threads would take a core
        self._model = _Model(
            n_state=kernel.n_state,
            n_head=h,
            n_layer=len(pre),
            n_vocab=kernel.n_vocab,
            n_audio=s,
            prefix=pre[0][0].shape[1],
            rows=rows,
            capacity=capacity,
            weights_kind=kernel.weights_kind,
            eps=kernel.eps,
            token_embedding=kernel._token_embedding,
            embedding_f16=kernel._embedding_f16,
            positional_embedding=kernel._positional,
            ln_w=kernel._ln[0],
            ln_b=kernel._ln[1],
            history=_pointer(self._history),
            layers=ctypes.cast(layers, _P),
            embedding_q8=kernel._embedding_q8,
            embedding_scale=kernel._embedding_scale,
            embedding_bias=kernel._embedding_bias,
            cross_kind=CROSS_KINDS.index(cross),
            int16_inputs=int(int16_inputs),
        )

    xp = np  # the array module of the logits

    def __call__(self, tokens) -> np.ndarray:
        """``tokens`` (rows,) -> logits (rows, V) float32, a new host array."""
        ids = np.ascontiguousarray(np.asarray(tokens), np.int32).reshape(self.rows)
        native.check(
            self._kernel.lib.decoder_step(
                ctypes.byref(self._model),
                _pointer(ids),
                self.length,
                _pointer(self._logits),
                native.workers(),
            ),
            "the C decoding step",
        )
        self.length += 1
        return self._logits.copy()

    def reorder(self, rows: Sequence[int]) -> None:
        """Row i continues what row ``rows[i]`` held."""
        src = np.ascontiguousarray(rows, np.int64)
        native.check(
            self._kernel.lib.decoder_reorder(ctypes.byref(self._model), _pointer(src), self.length),
            "the decoding rows' reorder",
        )
