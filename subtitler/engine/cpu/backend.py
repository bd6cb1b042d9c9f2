"""The native CPU backend: the Whisper network by our C kernels (``blocks``,
``decoder``), with MLX for what they do not cover (the cross-attention keys and
values, and decoding more rows than the C step takes).

A ``subtitler.engine.backends.Backend``, as ``MlxBackend`` is; it holds one for what the
kernels do not cover.
"""

from __future__ import annotations

from typing import Optional

import mlx.core as mx
import numpy as np

from subtitler.engine.cpu import blocks as cpu_blocks
from subtitler.engine.cpu import decoder as cpu_decoder
from subtitler.engine.kernels import dnnl
from subtitler.engine.kernels import ops as kernel_ops
from subtitler.engine.whisper.backend import MlxBackend
from subtitler.errors import ModelError


class CpuBackend:
    xp = np  # the steps' logits are host arrays

    def __init__(self, model, blocks, stem, prompt_blocks, step_kernel, dnnl_products: bool = False):
        self.encoder, self.decoder, self.dtype = model.encoder, model.decoder, model.dtype
        self.dnnl_products = dnnl_products  # the cross-attention keys and values by oneDNN (int8)
        self.blocks, self.stem = blocks, stem  # the encoder
        self.prompt_blocks, self.step_kernel = prompt_blocks, step_kernel  # the decoder
        # MLX's own network, for more rows than the C step takes; none where the model holds
        # no float32 products (loaded for int8: ``whisper.load``)
        self.mlx = None if getattr(model, "float32_released", False) else MlxBackend(model)

    @classmethod
    def build(cls, model, compute_type: str = "float32") -> Optional[CpuBackend]:
        """The backend for ``model``, or None where no C kernel applies (not an x86 CPU
        with the kernels built, quantized or float16 weights, ``SUBTITLER_CPU_KERNELS=0``).
        ``compute_type``: what the decoding steps' weights are read as (``cpu_decoder.COMPUTE_TYPES``)."""
        encoder, decoder = model.encoder, model.decoder
        int8 = None  # the int8 weights, quantized as the model loaded or here (the decoder's shared)
        if compute_type == "int8":
            int8 = getattr(model, "int8_weights", None) or kernel_ops.Int8Weights()
        blocks = cpu_blocks.Blocks.build(
            encoder.blocks, encoder.ln_post, compute_type, True, int8, "encoder.blocks"
        )
        stem = cpu_blocks.Stem.build(encoder, compute_type) if blocks is not None else None
        step_kernel = cpu_decoder.StepKernel.build(decoder, compute_type, int8)
        prompt_blocks = None
        if step_kernel is not None:
            # The prompt and the alignment pass read the step's int8 weights but keep their
            # activations float32: quantizing the decoder's per row (the first position's
            # are huge) costs more than the encoder's, and they are a small share of the time.
            prompt_blocks = cpu_blocks.Blocks.build(
                decoder.blocks, None, compute_type, False, int8, "decoder.blocks"
            )
        if blocks is None and step_kernel is None:
            return None
        # (the prompt's blocks are there only over plain float32 layers, the cross-attention's included)
        dnnl_products = compute_type == "int8" and None not in (blocks, prompt_blocks, dnnl.address())
        return cls(model, blocks, stem, prompt_blocks, step_kernel, dnnl_products)

    def for_rows(self, n: int) -> MlxBackend:
        """This backend for up to ``cpu_decoder.MAX_ROWS`` rows, MLX for more."""
        if self.step_kernel is not None and n <= cpu_decoder.MAX_ROWS:
            return self
        if self.mlx is None:
            raise ModelError(
                f"The int8 compute type decodes at most {cpu_decoder.MAX_ROWS} beams or samples at once; "
                f"choose a beam size up to {cpu_decoder.MAX_ROWS}, or the float32 compute type."
            )
        return self.mlx

    def embed_audio(self, mel: mx.array) -> mx.array:
        """The encoder's output (1, 1500, C) for a window's mel."""
        if self.blocks is None:
            return self.encoder(mel.astype(self.dtype))
        return self.blocks.encode(self.stem(mel) if self.stem is not None else self.encoder.stem(mel))

    def encode(self, mel: mx.array) -> list:
        features = self.embed_audio(mel)
        if not self.dnnl_products:
            kv = self.decoder.cross_kv(features)
            mx.eval(kv)
            return kv
        # The keys and values by oneDNN's sgemm, as the blocks' products (int8 compute type).
        x = kernel_ops.host_view(features)[0]
        kv = []
        for block in self.decoder.blocks:
            a = block.cross_attn
            heads = (1, a.n_head, -1, x.shape[0])
            k = dnnl.product(x, kernel_ops.host_view(a.key.weight)).reshape(heads)
            v = dnnl.product(x, kernel_ops.host_view(a.value.weight), kernel_ops.host_view(a.value.bias))
            kv.append((mx.array(k), mx.array(v.reshape(heads))))
        mx.eval(kv)
        return kv

    @property
    def reads_no_float32_weights(self) -> bool:
        """Whether nothing here reads the model's float32 products or token table (the int8
        compute type, every part in C): a model loaded for int8 holds none."""
        int8 = [b for b in (self.blocks, self.prompt_blocks) if b is not None]
        return (
            len(int8) == 2
            and all(b.int8 for b in int8)
            and self.stem is not None
            and self.step_kernel is not None
            and self.step_kernel.reads_no_float32_weights
        )

    @property
    def _step_tables(self) -> bool:
        """Whether the step's own tables (float16 lookups, int8 logits) serve the host too."""
        return self.step_kernel is not None and self.step_kernel.reads_no_float32_weights

    def _embed(self, tokens: list[int]):
        """The first block's input for ``tokens``: from the step's float16 table when it
        reads no float32 one, else MLX's."""
        if self._step_tables:
            return self.step_kernel.embed(tokens)
        return self.decoder.embed(mx.array([tokens]))

    def _logits(self, out: np.ndarray) -> np.ndarray:
        """The final norm and output embedding of the blocks' rows ``out`` (R, C): (R, V)."""
        if self._step_tables:
            return self.step_kernel.logits(out)
        return kernel_ops.host_array(self.decoder.logits(mx.array(out)[None])[0])

    def prompt(self, tokens: list[int], cross_kv, rows: list[int]):
        """As MLX's, but the blocks run in C and the keys and values come back as host
        arrays (H, T, D) per layer, as the C step takes them."""
        if self.prompt_blocks is None:
            return self.mlx.prompt(tokens, cross_kv, rows)
        out, kv, _ = self.prompt_blocks.prompt(self._embed(tokens), cross_kv)
        return mx.array(self._logits(out[rows]))[None], kv

    def steps(self, cross_kv, prefix, n: int, capacity: int):
        return self.step_kernel.session(cross_kv, prefix, n, capacity)

    def alignment(self, tokens: list[int], cross_kv, rows: list[int], heads):
        """As MLX's, but the blocks run in C, which hands back each layer's cross-attention
        queries; the scores of the alignment heads alone are products of those with the
        keys, not the whole attention."""
        if self.prompt_blocks is None:
            return self.mlx.alignment(tokens, cross_kv, rows, heads)
        out, _, queries = self.prompt_blocks.prompt(self._embed(tokens), cross_kv, queries=True)
        scores = []
        for layer in range(len(queries)):
            kt = kernel_ops.host_view(cross_kv[layer][0])[0]  # (H, 64, S)
            for head in (h for l, h in heads if l == layer):
                q = queries[layer][:, head * 64 : (head + 1) * 64] * np.float32(64**-0.5)
                scores.append(q @ kt[head])
        return self._logits(out[rows]), np.stack(scores)
