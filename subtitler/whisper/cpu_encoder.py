"""The audio encoder's transformer blocks on the CPU by one C call
(``encoder_blocks`` in ``_cpu_encoder.c``).

Under MLX a block was some twenty operations, each a pass over (1500, C) or larger
arrays, and each of the CPU kernels (``cpu_ops``: layer norm, attention, GELU) a round
trip from MLX to a host copy and back. The C call runs the blocks and the final norm
over one host copy of the activations: its products go to the preloaded BLAS's
``sgemm`` with biases and residuals riding on them, its attention is
``attention_d64``. The convolutional stem before the blocks and the cross-attention
keys and values after them stay with MLX.

Used on the CPU for float32 models with plain (not quantized) layers, where the C
kernels and a BLAS were loaded and the CPU has AVX2 and FMA; elsewhere, and with
``SUBTITLER_CPU_KERNELS=0``, the blocks run through MLX as before.
"""

from __future__ import annotations

import ctypes
from typing import Optional

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from .. import _blas
from . import cpu_ops

_P = ctypes.c_void_p
_LAYER_FIELDS = ("attn_ln_w", "attn_ln_b", "qkv_w", "qkv_b", "attn_out_w", "attn_out_b",
                 "mlp_ln_w", "mlp_ln_b", "mlp1_w", "mlp1_b", "mlp2_w", "mlp2_b")


class _Layer(ctypes.Structure):
    _fields_ = [(name, _P) for name in _LAYER_FIELDS]


class _Model(ctypes.Structure):
    _fields_ = [("n_state", ctypes.c_long), ("n_head", ctypes.c_long), ("n_layer", ctypes.c_long),
                ("eps", ctypes.c_float), ("ln_post_w", _P), ("ln_post_b", _P), ("layers", _P)]


class EncoderKernel:
    """The encoder's block weights as ``encoder_blocks`` reads them; calling it runs
    the blocks and the final norm."""

    def __init__(self, encoder, lib, sgemm: int):
        self._lib, self._sgemm = lib, sgemm
        self._rest = _blas.rest_workers_address()
        self._keep = []
        layers = (_Layer * len(encoder.blocks))()
        for i, b in enumerate(encoder.blocks):
            w, bias = b.attn._qkv
            layers[i] = _Layer(*(self._pointer(a) for a in (
                b.attn_ln.weight, b.attn_ln.bias, w, bias, b.attn.out.weight, b.attn.out.bias,
                b.mlp_ln.weight, b.mlp_ln.bias, b.mlp1.weight, b.mlp1.bias, b.mlp2.weight, b.mlp2.bias)))
        self._layers = layers
        first = encoder.blocks[0]
        self._model = _Model(first.attn.query.weight.shape[0], first.attn.n_head, len(encoder.blocks),
                             float(first.attn_ln.eps), self._pointer(encoder.ln_post.weight),
                             self._pointer(encoder.ln_post.bias), ctypes.cast(layers, _P))

    @classmethod
    def build(cls, encoder) -> Optional["EncoderKernel"]:
        """The kernel for ``encoder``, or None where it does not apply (see the module)."""
        lib = cpu_ops._kernels()
        sgemm = _blas.sgemm_address()
        if lib is None or not sgemm or not hasattr(lib, "encoder_blocks") or not lib.encoder_supported():
            return None
        if lib.encoder_blocks.argtypes is None:
            lib.encoder_blocks.argtypes = [_P, _P, ctypes.c_long, _P, _P, ctypes.c_int]
        first = encoder.blocks[0]
        if not cpu_ops.applies(first.attn.query.weight) or first.attn.query.weight.shape[0] != 64 * first.attn.n_head:
            return None
        for b in encoder.blocks:
            linears = (b.attn.query, b.attn.key, b.attn.value, b.attn.out, b.mlp1, b.mlp2)
            norms = (b.attn_ln, b.mlp_ln, encoder.ln_post)
            if getattr(b.attn, "_qkv", None) is None or any(type(x) is not nn.Linear for x in linears) \
                    or any("weight" not in n or "bias" not in n for n in norms):
                return None
        return cls(encoder, lib, sgemm)

    def _pointer(self, a: mx.array) -> int:
        v = cpu_ops.host_array(a)
        self._keep.append(v)
        return v.ctypes.data

    def __call__(self, x: mx.array) -> mx.array:
        """x (B, T, C) after the stem and positions -> the encoder's output (B, T, C)."""
        out = np.array(cpu_ops.host_view(x), np.float32, order="C")  # our own copy, changed in place
        for row in out:
            status = self._lib.encoder_blocks(ctypes.byref(self._model), row.ctypes.data, row.shape[0],
                                              self._sgemm, self._rest, cpu_ops._workers())
            if status == -2:
                raise MemoryError("the encoder could not allocate its buffers")
            if status:
                raise RuntimeError("the C encoder does not run on this CPU")
        return mx.array(out)
