"""Transformer blocks over many rows on the CPU by one C call (``blocks_forward`` in
``_cpu_blocks.c``): the audio encoder's blocks and final norm, and the text decoder's
blocks over a prompt; and the encoder's convolutional stem by another (``Stem``).

Under MLX an encoder block was some twenty operations, each a pass over (1500, C) or
larger arrays, and each of the CPU kernels (``kernel_ops``: layer norm, attention, GELU)
a round trip from MLX to a host copy and back. The C call runs the blocks over one
host copy of the activations: its products go to the preloaded BLAS's ``sgemm`` with
biases and residuals riding on them, its attention is ``attention_d64``.

The cross-attention keys and values stay with MLX. Used on the CPU for float32 models with plain
(not quantized) layers, where the C kernels and a BLAS were loaded and the CPU has AVX2 and FMA;
elsewhere, and with ``SUBTITLER_CPU_KERNELS=0``, the blocks run through MLX as before.
"""

from __future__ import annotations

import ctypes
from typing import Optional

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from subtitler.engine.kernels import blas as _blas
from subtitler.engine.kernels import dnnl as _dnnl
from subtitler.engine.kernels import native
from subtitler.engine.kernels import ops as kernel_ops
from subtitler.engine.whisper.model import Whisper

_P = ctypes.c_void_p
# A layer's norms, products and the window's keys and values, as both C layer structs
# (csrc/blocks.c's and csrc/decoder.c's) begin.
LAYER_WEIGHTS = (
    "attn_ln_w",
    "attn_ln_b",
    "qkv_w",
    "qkv_b",
    "attn_out_w",
    "attn_out_b",
    "cross_ln_w",
    "cross_ln_b",
    "cross_q_w",
    "cross_q_b",
    "cross_out_w",
    "cross_out_b",
    "cross_kt",
    "cross_vt",
    "mlp_ln_w",
    "mlp_ln_b",
    "mlp1_w",
    "mlp1_b",
    "mlp2_w",
    "mlp2_b",
)
PRODUCTS = ("qkv", "attn_out", "cross_q", "cross_out", "mlp1", "mlp2")  # a layer's products...
# ...by the name of their parameter within a block (``Int8Weights``' preset names)
PARAMETER_NAMES = ("attn.qkv", "attn.out", "cross_attn.query", "cross_attn.out", "mlp1", "mlp2")
_PARAMETER = dict(zip(PRODUCTS, PARAMETER_NAMES))
# Then the pass's own outputs, and each int8 product's (weights, scale per row, sum per row): struct q8.
_LAYER_FIELDS = (
    *LAYER_WEIGHTS,
    "keys",
    "values",
    "cross_q",
    *(f"{name}_q_{part}" for name in PRODUCTS for part in ("w", "scale", "sum")),
)


_Layer = native.pointers("_Layer", _LAYER_FIELDS)


class _Blocks(ctypes.Structure):
    _fields_ = [
        ("n_state", ctypes.c_long),
        ("n_head", ctypes.c_long),
        ("n_layer", ctypes.c_long),
        ("n_audio", ctypes.c_long),
        ("eps", ctypes.c_float),
        ("ln_w", _P),
        ("ln_b", _P),
        ("layers", _P),
        ("gemm_u8", _P),
        ("int16_inputs", ctypes.c_long),
    ]


def _library():
    lib = native.library()
    if lib is None or not lib.blocks_supported():
        return None
    return lib


def plain(blocks, final_norm) -> bool:
    """Whether the blocks are float32 on the CPU, with fused query/key/value weights,
    plain linear layers and norms with weights and biases, and heads of 64."""
    first = blocks[0]
    if (
        not kernel_ops.applies(first.attn.query.weight)
        or first.attn.query.bias.shape[0] != 64 * first.attn.n_head  # (the weight may be let go: int8)
    ):
        return False
    for b in blocks:
        attentions = (b.attn, *((b.cross_attn,) if hasattr(b, "cross_attn") else ()))
        linears = [b.mlp1, b.mlp2, *(x for a in attentions for x in (a.query, a.key, a.value, a.out))]
        norms = [b.attn_ln, b.mlp_ln, *((b.cross_attn_ln,) if hasattr(b, "cross_attn") else ())]
        if (
            b.attn.fused_weights is None
            or any(type(x) is not nn.Linear for x in linears)
            or any("weight" not in n or "bias" not in n for n in norms)
        ):
            return False
    return final_norm is None or ("weight" in final_norm and "bias" in final_norm)


class Blocks:
    """A stack of blocks as ``blocks_forward`` reads them. With ``int8`` (the int8 compute
    type: ``kernel_ops.Int8Weights``) the products hold int8 weights with a scale per
    output row and no float32 ones: with ``gemm_u8`` (an integer product: oneDNN's or
    ``q8_gemm``) their inputs are quantized per row as they run; without it, with
    ``int16_inputs`` their inputs are rounded to int16 per row (as the AVX2 decoding
    step's, ``q8i_product``), else each product's weights are dequantized for ``sgemm``
    as it runs."""

    def __init__(
        self,
        blocks,
        final_norm,
        lib,
        sgemm: int,
        gemm_u8: Optional[int] = None,
        int8: Optional[kernel_ops.Int8Weights] = None,
        prefix: str = "",
        int16_inputs: bool = False,
    ):
        if gemm_u8 and int8 is None:
            int8 = kernel_ops.Int8Weights()
        self.int8 = int8 is not None  # the products hold int8 weights only
        self._lib, self._sgemm = lib, sgemm
        self._rest = _blas.rest_workers_address()
        self._host = kernel_ops.HostArrays()
        self._layers = (_Layer * len(blocks))()
        for i, b in enumerate(blocks):
            w, bias = b.attn.fused_weights
            fields = {
                "attn_ln_w": b.attn_ln.weight,
                "attn_ln_b": b.attn_ln.bias,
                "qkv_w": w,
                "qkv_b": bias,
                "attn_out_w": b.attn.out.weight,
                "attn_out_b": b.attn.out.bias,
                "mlp_ln_w": b.mlp_ln.weight,
                "mlp_ln_b": b.mlp_ln.bias,
                "mlp1_w": b.mlp1.weight,
                "mlp1_b": b.mlp1.bias,
                "mlp2_w": b.mlp2.weight,
                "mlp2_b": b.mlp2.bias,
            }
            if hasattr(b, "cross_attn"):
                fields.update(
                    {
                        "cross_ln_w": b.cross_attn_ln.weight,
                        "cross_ln_b": b.cross_attn_ln.bias,
                        "cross_q_w": b.cross_attn.query.weight,
                        "cross_q_b": b.cross_attn.query.bias,
                        "cross_out_w": b.cross_attn.out.weight,
                        "cross_out_b": b.cross_attn.out.bias,
                    }
                )
            if int8 is not None and f"{prefix}.{i}" not in Whisper.FLOAT32_BLOCKS:  # products in int8 only
                for name in PRODUCTS:
                    if f"{name}_w" in fields:
                        weights = int8.of(fields.pop(f"{name}_w"), f"{prefix}.{i}.{_PARAMETER[name]}")
                        for part, a in zip(("w", "scale", "sum"), weights):
                            fields[f"{name}_q_{part}"] = a
            self._layers[i] = _Layer(**{k: self._host.pointer(a) for k, a in fields.items()})
        first = blocks[0]
        self.n_state, self.n_head = first.attn.query.bias.shape[0], first.attn.n_head
        norm = (
            (self._host.pointer(final_norm.weight), self._host.pointer(final_norm.bias))
            if final_norm is not None
            else (None, None)
        )
        self._model = _Blocks(
            self.n_state,
            self.n_head,
            len(blocks),
            0,
            float(first.attn_ln.eps),
            *norm,
            ctypes.cast(self._layers, _P),
            gemm_u8,
            int(int16_inputs),
        )

    @classmethod
    def build(
        cls,
        blocks,
        final_norm=None,
        compute_type: str = "float32",
        int8_products: bool = True,
        int8: Optional[kernel_ops.Int8Weights] = None,
        prefix: str = "",
        int16_inputs: Optional[bool] = None,
    ) -> Optional[Blocks]:
        """The kernel for ``blocks`` (then ``final_norm``), or None where it does not
        apply (see the module). ``compute_type`` "int8": int8 weights (from ``int8``,
        shared with other kernels), float products by oneDNN's sgemm where it is installed
        (faster here than the BLAS's, and the same bits whatever the thread count), and
        with ``int8_products`` integer ones (``_integer_product``); without them, by
        default, integer products over inputs rounded to int16 where the AVX2 decoding
        step's run (``int16_inputs``: a 150-token prompt of base 71 -> 57 ms).
        ``prefix``: the blocks' parameter names' ("encoder.blocks"), by which ``int8``
        knows weights quantized as the model loaded."""
        lib, sgemm = _library(), _blas.sgemm_address()
        if lib is None or not sgemm or not plain(blocks, final_norm):
            return None
        gemm_u8 = None
        if compute_type == "int8":
            int8 = int8 or kernel_ops.Int8Weights()
            if _dnnl.address():
                sgemm = _dnnl.sgemm_address()
            if int8_products:
                gemm_u8 = _integer_product(lib)
        if int16_inputs is None:
            int16_inputs = compute_type == "int8" and not gemm_u8 and bool(lib.rows_q8_int16_supported())
        return cls(blocks, final_norm, lib, sgemm, gemm_u8, int8, prefix, int16_inputs)

    def _run(self, x: np.ndarray, model=None, mask: Optional[np.ndarray] = None) -> None:
        native.check(
            self._lib.blocks_forward(
                ctypes.byref(model or self._model),
                x.ctypes.data,
                x.shape[0],
                None if mask is None else mask.ctypes.data,
                self._sgemm,
                self._rest,
                native.workers(),
            ),
            "the C transformer blocks",
        )

    def encode(self, x) -> mx.array:
        """The encoder: x (B, T, C) after the stem and positions, an MLX array or a host
        array this may change -> its output (B, T, C)."""
        out = x if isinstance(x, np.ndarray) else np.array(kernel_ops.host_view(x), np.float32, order="C")
        for row in out:
            self._run(row)
        return mx.array(out)

    def prompt(self, x: mx.array, cross_kv, queries: bool = False):
        """The decoder over a prompt: x (1, T, C) embedded tokens, ``cross_kv`` per layer
        (keys, values) transposed (1, H, 64, S) -> the blocks' output (T, C), each
        layer's keys and values (H, T, 64), as ``cpu_decoder`` takes them, and with
        ``queries`` each layer's cross-attention queries (T, C), unscaled (else None)."""
        rows = x[0] if isinstance(x, np.ndarray) else kernel_ops.host_view(x)[0]
        out = np.array(rows, np.float32, order="C")
        t = out.shape[0]
        mx.eval(cross_kv)
        cross = [
            (kernel_ops.host_array(k)[0], kernel_ops.host_array(v)[0]) for k, v in cross_kv
        ]  # no MLX slices: each
        # would be an evaluation of its own
        kv = [
            (np.empty((self.n_head, t, 64), np.float32), np.empty((self.n_head, t, 64), np.float32))
            for _ in cross
        ]
        q = [np.empty((t, self.n_state), np.float32) for _ in cross] if queries else None
        layers = (_Layer * len(cross))(*self._layers)  # this call's copy: the window's pointers go in it
        for i, (layer, (kt, vt), (k, v)) in enumerate(zip(layers, cross, kv)):
            layer.cross_kt, layer.cross_vt, layer.keys, layer.values = (a.ctypes.data for a in (kt, vt, k, v))
            layer.cross_q = q[i].ctypes.data if q else None
        model = _Blocks(
            self.n_state,
            self.n_head,
            len(cross),
            cross[0][0].shape[-1],
            self._model.eps,
            self._model.ln_w,
            self._model.ln_b,
            ctypes.cast(layers, _P),
            self._model.gemm_u8,
            self._model.int16_inputs,
        )
        self._run(out, model, np.triu(np.full((t, t), -np.inf, np.float32), 1))
        return out, kv, q


def describe_int8_products() -> str:
    """How the int8 encoder's products run here, in words (``subtitler doctor``)."""
    lib = _library()
    if lib is None:
        return "the C blocks do not run here"
    product = _integer_product(lib)
    if product is None:
        return "int8 weights widened to float32 products"
    if product == _dnnl.address():
        return "int8 products by oneDNN (VNNI)"
    return "int8 products by our AVX2 kernel (11-bit activations)"


def _integer_product(lib) -> Optional[int]:
    """The int8 products' integer product, by address: oneDNN's on a CPU with VNNI (u8
    activations), else ours on AVX2 (``q8_gemm``: 11-bit activations, 16-bit products),
    else None (float products over weights widened as they run)."""
    if _dnnl.has_vnni() and _dnnl.address():
        return _dnnl.address()
    if lib.q8_gemm_supported():
        return ctypes.cast(lib.q8_gemm, _P).value
    return None


class Stem:
    """The encoder's convolutional stem, GELUs and positions by one C call
    (``encoder_stem``): each convolution is one ``sgemm`` over windows of three
    frames."""

    def __init__(self, encoder, lib, sgemm: int):
        self._lib, self._sgemm = lib, sgemm
        self._weights = [
            kernel_ops.host_array(a)
            for a in (
                encoder.conv1.weight,
                encoder.conv1.bias,
                encoder.conv2.weight,
                encoder.conv2.bias,
                encoder.positions,
            )
        ]
        self.n_state, self.n_mels = encoder.conv1.weight.shape[0], encoder.conv1.weight.shape[2]

    @classmethod
    def build(cls, encoder, compute_type: str = "float32") -> Optional[Stem]:
        """The stem for ``encoder``, or None where it does not apply (see ``Blocks``).
        With ``compute_type`` "int8" (and oneDNN) its products are oneDNN's, as the blocks':
        the int8 blocks' input then has the same bits whatever the thread count."""
        lib, sgemm = native.library(), _blas.sgemm_address()
        if compute_type == "int8" and _dnnl.address():
            sgemm = _dnnl.sgemm_address()
        c1, c2 = encoder.conv1, encoder.conv2
        if lib is None or not sgemm or not kernel_ops.applies(c1.weight):
            return None
        shapes = [(c.weight.shape[1], c.stride, c.padding, "bias" in c) for c in (c1, c2)]
        if (
            type(c1) is not nn.Conv1d
            or type(c2) is not nn.Conv1d
            or shapes != [(3, 1, 1, True), (3, 2, 1, True)]
        ):
            return None
        return cls(encoder, lib, sgemm)

    def __call__(self, mel: mx.array) -> np.ndarray:
        """mel (B, 2T, n_mels) -> the blocks' input (B, T, C), a new host array."""
        frames = np.ascontiguousarray(kernel_ops.host_view(mel), np.float32)
        b, n = frames.shape[0], frames.shape[1]
        out = np.empty((b, (n + 1) // 2, self.n_state), np.float32)
        if out.shape[1] > self._weights[4].shape[0]:
            raise ValueError(f"{n} mel frames are more than the encoder's {2 * self._weights[4].shape[0]}")
        w1, b1, w2, b2, positions = (w.ctypes.data for w in self._weights)
        for src, dst in zip(frames, out):
            native.check(
                self._lib.encoder_stem(
                    src.ctypes.data,
                    n,
                    self.n_mels,
                    w1,
                    b1,
                    w2,
                    b2,
                    positions,
                    self.n_state,
                    dst.ctypes.data,
                    self._sgemm,
                ),
                "the encoder's stem",
            )
        return out
