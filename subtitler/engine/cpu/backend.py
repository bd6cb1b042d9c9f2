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


class CpuBackend:
    xp = np  # the steps' logits are host arrays

    def __init__(self, model, blocks, stem, prompt_blocks, step_kernel, dnnl_products: bool = False):
        self.encoder, self.decoder, self.dtype = model.encoder, model.decoder, model.dtype
        self.dnnl_products = dnnl_products  # the cross-attention keys and values by oneDNN (int8)
        self.blocks, self.stem = blocks, stem  # the encoder
        self.prompt_blocks, self.step_kernel = prompt_blocks, step_kernel  # the decoder
        self.mlx = MlxBackend(model)

    @classmethod
    def build(cls, model, compute_type: str = "float32") -> Optional[CpuBackend]:
        """The backend for ``model``, or None where no C kernel applies (not an x86 CPU
        with the kernels built, quantized or float16 weights, ``SUBTITLER_CPU_KERNELS=0``).
        ``compute_type``: what the decoding steps' weights are read as (``cpu_decoder.COMPUTE_TYPES``)."""
        encoder, decoder = model.encoder, model.decoder
        blocks = cpu_blocks.Blocks.build(encoder.blocks, encoder.ln_post, compute_type)
        stem = cpu_blocks.Stem.build(encoder, compute_type) if blocks is not None else None
        step_kernel = cpu_decoder.StepKernel.build(decoder, compute_type)
        prompt_blocks = None
        if step_kernel is not None:
            # The prompt and the alignment pass keep float32 products whatever the compute
            # type: quantizing the decoder's activations per row (the first position's are
            # huge) garbled translations with base; they are a small share of the time.
            prompt_blocks = cpu_blocks.Blocks.build(decoder.blocks, None, compute_type, int8_products=False)
        if blocks is None and step_kernel is None:
            return None
        # (the prompt's blocks are there only over plain float32 layers, the cross-attention's included)
        dnnl_products = compute_type == "int8" and None not in (blocks, prompt_blocks, dnnl.address())
        return cls(model, blocks, stem, prompt_blocks, step_kernel, dnnl_products)

    def for_rows(self, n: int) -> MlxBackend:
        """This backend for up to ``cpu_decoder.MAX_ROWS`` rows, MLX for more."""
        return self if self.step_kernel is not None and n <= cpu_decoder.MAX_ROWS else self.mlx

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

    def prompt(self, tokens: list[int], cross_kv, rows: list[int]):
        """As MLX's, but the blocks run in C and the keys and values come back as host
        arrays (H, T, D) per layer, as the C step takes them."""
        if self.prompt_blocks is None:
            return self.mlx.prompt(tokens, cross_kv, rows)
        x = self.decoder.embed(mx.array([tokens]))
        out, kv, _ = self.prompt_blocks.prompt(x, cross_kv)
        return self.decoder.logits(mx.array(out[rows])[None]), kv

    def steps(self, cross_kv, prefix, n: int, capacity: int):
        return self.step_kernel.session(cross_kv, prefix, n, capacity)

    def alignment(self, tokens: list[int], cross_kv, rows: list[int], heads):
        """As MLX's, but the blocks run in C, which hands back each layer's cross-attention
        queries; the scores of the alignment heads alone are products of those with the
        keys, not the whole attention."""
        if self.prompt_blocks is None:
            return self.mlx.alignment(tokens, cross_kv, rows, heads)
        out, _, queries = self.prompt_blocks.prompt(
            self.decoder.embed(mx.array([tokens])), cross_kv, queries=True
        )
        scores = []
        for layer in range(len(queries)):
            kt = kernel_ops.host_view(cross_kv[layer][0])[0]  # (H, 64, S)
            for head in (h for l, h in heads if l == layer):
                q = queries[layer][:, head * 64 : (head + 1) * 64] * np.float32(64**-0.5)
                scores.append(q @ kt[head])
        logits = kernel_ops.host_array(self.decoder.logits(mx.array(out[rows])[None])[0])
        return logits, np.stack(scores)
