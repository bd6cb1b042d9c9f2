"""The Whisper network in MLX: conv stem + pre-LN transformer encoder, decoder with
learned positions, self- and cross-attention and an output tied to the embedding.

Module names follow the mlx-community checkpoints, so their weights load as they are.
Pure MLX: the few ops a device may do faster (GELU, layer norms, long attention, the
output embedding) go through ``ops``, MLX's own by default; ``Whisper.prepare`` takes
faster ones (the loader passes ``engine.kernels.ops``, which use the C kernels on a CPU).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import mlx.core as mx
import mlx.nn as nn
import numpy as np


@dataclass(frozen=True)
class ModelDimensions:
    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


def sinusoids(length: int, channels: int, max_timescale: float = 10000) -> np.ndarray:
    """The encoder's fixed sinusoidal positions, shape (length, channels)."""
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = np.exp(-inc * np.arange(channels // 2))
    t = np.arange(length)[:, None] * inv[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1).astype(np.float32)


class MlxOps:
    """The ops ``Whisper.prepare`` lets a device replace, by MLX's own kernels. A
    replacement has the same names (``engine.kernels.ops`` is one)."""

    LOGITS_MAX_ROWS = 0  # decoding steps whose output embedding ``logits`` takes (none here)

    gelu = staticmethod(nn.gelu)

    @staticmethod
    def layer_norm(x: mx.array, norm: nn.LayerNorm) -> mx.array:
        return norm(x)

    @staticmethod
    def applies(x: mx.array) -> bool:
        """Whether ``attention`` takes the long attention of ``x`` (here never)."""
        return False

    @staticmethod
    def half_table(w: mx.array, source=None):
        """A host table for ``logits``, where the device has one (here none)."""
        return None

    @staticmethod
    def warm_up() -> None:
        pass

    attention = logits = None  # taken only where ``applies`` or a half table says so


class UsesOps:
    """What a module with replaceable ops reads them from (``Whisper.prepare`` sets them)."""

    ops = MlxOps


class MultiHeadAttention(nn.Module, UsesOps):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(n_state, n_state)
        self.key = nn.Linear(n_state, n_state, bias=False)
        self.value = nn.Linear(n_state, n_state)
        self.out = nn.Linear(n_state, n_state)

    def heads(self, x: mx.array) -> mx.array:
        b, t, _ = x.shape
        return x.reshape(b, t, self.n_head, -1).transpose(0, 2, 1, 3)

    def merge(self, x: mx.array) -> mx.array:
        b, _, t, _ = x.shape
        return x.transpose(0, 2, 1, 3).reshape(b, t, -1)

    def kv(self, x: mx.array) -> tuple[mx.array, mx.array]:
        """Keys and values in head layout (B, H, T, D)."""
        return self.heads(self.key(x)), self.heads(self.value(x))

    def fuse_qkv(self) -> None:
        """Stack the query, key and value weights into one (3C, C) matrix, so that
        self-attention projects with one product instead of three. The three layers keep their weights as
        views of the stacked one, so nothing is stored twice."""
        layers = (self.query, self.key, self.value)
        if not all(type(layer) is nn.Linear for layer in layers):
            return  # quantized layers keep their own kernels
        n = self.query.weight.shape[0]
        w = mx.concatenate([layer.weight for layer in layers])
        b = mx.concatenate([self.query.bias, mx.zeros_like(self.query.bias), self.value.bias])
        self.query.weight, self.key.weight, self.value.weight = w[:n], w[n : 2 * n], w[2 * n :]
        mx.eval(w, b, self.query.weight, self.key.weight, self.value.weight)
        self._qkv = (w, b)

    @property
    def fused_weights(self) -> tuple[mx.array, mx.array] | None:
        """The stacked (3C, C) query/key/value weights and their bias, once fused."""
        return getattr(self, "_qkv", None)

    def qkv(self, x: mx.array) -> tuple[mx.array, mx.array, mx.array]:
        """Query (B, T, C), and keys and values in head layout (B, H, T, D)."""
        fused = getattr(self, "_qkv", None)
        if fused is None:
            return (self.query(x), *self.kv(x))
        q, k, v = mx.split(mx.addmm(fused[1], x, fused[0].T), 3, axis=-1)
        return q, self.heads(k), self.heads(v)

    def attend(self, q: mx.array, k: mx.array, v: mx.array, mask=None) -> mx.array:
        q = self.heads(q)
        scale = q.shape[-1] ** -0.5
        if q.shape[2] > 64 and self.ops.applies(q):
            # The encoder's attention, or the decoder's over a prompt (masked).
            return self.out(self.ops.attention(q, k.swapaxes(-1, -2), v, scale, mask))
        o = mx.fast.scaled_dot_product_attention(q, k, v, scale=scale, mask=mask)
        return self.out(self.merge(o))

    def attend_after(self, q: mx.array, k: mx.array, v: mx.array, kp: mx.array, vp: mx.array) -> mx.array:
        """Attention of one new position per row, ``q`` (B, 1, C): over earlier
        positions that all rows share, ``kp``/``vp`` (1, H, P, D) (the prompt), and over
        each row's own positions ``k``/``v`` (B, H, S, D), the new one last.

        The shared positions are stored once, not once per row, so beam search
        reorders and extends only the rows' own (with 5 beams after a long prompt, the
        whole cache had been copied every step)."""
        p = kp.shape[2]
        folded = self._shared_queries(q)  # (1, H, B, D): the rows as query positions
        qh = folded.transpose(2, 1, 0, 3)  # (B, H, 1, D)
        past = (folded @ kp.swapaxes(-1, -2)).transpose(2, 1, 0, 3)  # (B, H, 1, P)
        w = mx.softmax(mx.concatenate([past, qh @ k.swapaxes(-1, -2)], axis=-1), axis=-1, precise=True)
        o = (w[..., :p].transpose(2, 1, 0, 3) @ vp).transpose(2, 1, 0, 3) + w[..., p:] @ v
        return self.out(self.merge(o))

    def shared_kv(self, x: mx.array) -> tuple[mx.array, mx.array]:
        """Cross-attention keys and values, computed once per window and shared by
        every beam or sample, both transposed and contiguous: (B, H, D, S).

        Transposed, the products of a decoding step read them along their rows; and
        ``W @ x^T`` makes them so with no copy."""
        b, s, _ = x.shape
        if type(self.key) is nn.Linear and type(self.value) is nn.Linear:
            xt = x.swapaxes(-1, -2)
            kt, vt = self.key.weight @ xt, self.value.weight @ xt + self.value.bias[:, None]
        else:  # quantized layers keep their own kernels
            kt, vt = (mx.contiguous(layer(x).swapaxes(-1, -2)) for layer in (self.key, self.value))
        return kt.reshape(b, self.n_head, -1, s), vt.reshape(b, self.n_head, -1, s)

    def _shared_queries(self, q: mx.array) -> mx.array:
        """Scaled queries (B, T, d) as (1, H, B*T, D): folding the rows into the query
        axis makes their product with the shared keys one matrix product per head."""
        b, t, _ = q.shape
        qh = self.heads(q) * (q.shape[-1] // self.n_head) ** -0.5  # (B, H, T, D)
        return qh.transpose(1, 0, 2, 3).reshape(1, self.n_head, b * t, -1)

    def attend_shared(self, q: mx.array, kt: mx.array, vt: mx.array) -> mx.array:
        """Attention of ``q`` (B, T, C) over the keys and values of ``shared_kv``."""
        b, t, _ = q.shape
        v = vt.swapaxes(-1, -2)
        if b == 1 and t > 64 and self.ops.applies(q):  # a prompt: hundreds of rows
            return self.out(self.ops.attention(self.heads(q), kt, v, (q.shape[-1] // self.n_head) ** -0.5))
        o = mx.softmax(self._shared_queries(q) @ kt, axis=-1, precise=True) @ v
        o = o.reshape(self.n_head, b, t, -1).transpose(1, 0, 2, 3)
        return self.out(self.merge(o))

    def scores(self, q: mx.array, kt: mx.array, heads: Sequence[int]) -> mx.array:
        """Scaled cross-attention logits (B, len(heads), T, S) of ``heads`` before
        softmax, for word alignment (the other heads are not computed)."""
        b, t, _ = q.shape
        idx = mx.array(list(heads))
        s = mx.take(self._shared_queries(q), idx, axis=1) @ mx.take(kt[:1], idx, axis=1)
        return s.reshape(len(heads), b, t, -1).transpose(1, 0, 2, 3).astype(mx.float32)


class EncoderBlock(nn.Module, UsesOps):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        self.mlp1 = nn.Linear(n_state, 4 * n_state)
        self.mlp2 = nn.Linear(4 * n_state, n_state)
        self.mlp_ln = nn.LayerNorm(n_state)

    def __call__(self, x: mx.array) -> mx.array:
        x = x + self.attn.attend(*self.attn.qkv(self.ops.layer_norm(x, self.attn_ln)))
        return x + self.mlp2(self.ops.gelu(self.mlp1(self.ops.layer_norm(x, self.mlp_ln))))


class DecoderBlock(nn.Module, UsesOps):
    def __init__(self, n_state: int, n_head: int):
        super().__init__()
        self.attn = MultiHeadAttention(n_state, n_head)
        self.attn_ln = nn.LayerNorm(n_state)
        self.cross_attn = MultiHeadAttention(n_state, n_head)
        self.cross_attn_ln = nn.LayerNorm(n_state)
        self.mlp1 = nn.Linear(n_state, 4 * n_state)
        self.mlp2 = nn.Linear(4 * n_state, n_state)
        self.mlp_ln = nn.LayerNorm(n_state)

    def __call__(self, x, cross_kv, self_kv=None, mask=None, want_weights=(), shared=None):
        """``self_kv``: the rows' own earlier keys and values; ``shared``: earlier keys
        and values that all rows share (one new position per row then);
        ``want_weights``: the cross-attention heads whose scores to return."""
        q, k, v = self.attn.qkv(self.attn_ln(x))
        if self_kv is not None:
            k = mx.concatenate([self_kv[0], k], axis=2)
            v = mx.concatenate([self_kv[1], v], axis=2)
        if shared is None:
            x = x + self.attn.attend(q, k, v, mask=mask)
        else:
            x = x + self.attn.attend_after(q, k, v, *shared)
        q = self.cross_attn.query(self.cross_attn_ln(x))
        x = x + self.cross_attn.attend_shared(q, *cross_kv)
        weights = self.cross_attn.scores(q, cross_kv[0], want_weights) if want_weights else None
        x = x + self.mlp2(self.ops.gelu(self.mlp1(self.mlp_ln(x))))
        return x, (k, v), weights


class AudioEncoder(nn.Module, UsesOps):
    def __init__(self, dims: ModelDimensions, dtype=mx.float32):
        super().__init__()
        n = dims.n_audio_state
        self.conv1 = nn.Conv1d(dims.n_mels, n, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(n, n, kernel_size=3, stride=2, padding=1)
        self._positional_embedding = mx.array(sinusoids(dims.n_audio_ctx, n)).astype(dtype)
        self.blocks = [EncoderBlock(n, dims.n_audio_head) for _ in range(dims.n_audio_layer)]
        self.ln_post = nn.LayerNorm(n)

    @property
    def positions(self) -> mx.array:
        """The sinusoidal position table (n_audio_ctx, C) (not a trained parameter)."""
        return self._positional_embedding

    def stem(self, mel: mx.array) -> mx.array:
        """The convolutions, their GELUs and the positions, in MLX."""
        x = self.ops.gelu(self.conv1(mel))
        x = self.ops.gelu(self.conv2(x))
        return x + self._positional_embedding[: x.shape[1]]

    def __call__(self, mel: mx.array) -> mx.array:
        """mel (B, 3000, n_mels) -> audio features (B, 1500, n_state)."""
        x = self.stem(mel)
        for block in self.blocks:
            x = block(x)
        return self.ops.layer_norm(x, self.ln_post)


class TextDecoder(nn.Module, UsesOps):
    def __init__(self, dims: ModelDimensions, dtype=mx.float32):
        super().__init__()
        n = dims.n_text_state
        self.token_embedding = nn.Embedding(dims.n_vocab, n)
        self.positional_embedding = mx.zeros((dims.n_text_ctx, n), dtype=dtype)
        self.blocks = [DecoderBlock(n, dims.n_text_head) for _ in range(dims.n_text_layer)]
        self.ln = nn.LayerNorm(n)
        self._embedding_t = self._embedding_half = None

    def cross_kv(self, audio_features: mx.array) -> list[tuple[mx.array, mx.array]]:
        """Cross-attention keys/values of every layer, computed once per window."""
        return [b.cross_attn.shared_kv(audio_features) for b in self.blocks]

    def __call__(self, tokens, cross_kv, cache=None, want_weights=None, rows=None, shared=None):
        """tokens (B, T) -> logits (B, T, V) float32, new cache, cross weights per layer.

        ``rows``: positions along T whose logits are wanted (default all); a prompt's
        other rows would cost a 51k-wide product each. ``shared``: per layer, keys and
        values (1, H, P, D) before ``cache`` that all rows share (T must be 1 then).
        ``want_weights``: (layer, head) pairs whose cross-attention scores are
        returned, per layer (B, heads of that layer, T, S), None for the others.
        """
        heads = [[h for layer, h in (want_weights or ()) if layer == i] for i in range(len(self.blocks))]
        offset = (shared[0][0].shape[2] if shared else 0) + (cache[0][0].shape[2] if cache else 0)
        t = tokens.shape[-1]
        x = self.embed(tokens, offset)
        mask = None
        if t > 1:
            mask = nn.MultiHeadAttention.create_additive_causal_mask(t).astype(x.dtype)
            if offset:
                mask = mx.concatenate([mx.zeros((t, offset), dtype=x.dtype), mask], axis=1)
        new_cache, all_weights = [], []
        for i, block in enumerate(self.blocks):
            x, kv, w = block(
                x, cross_kv[i], cache[i] if cache else None, mask, heads[i], shared[i] if shared else None
            )
            new_cache.append(kv)
            all_weights.append(w)
        if rows is not None:
            x = x[:, mx.array(rows)]
        return self.logits(x), new_cache, all_weights

    def embed(self, tokens: mx.array, offset: int = 0) -> mx.array:
        """tokens (B, T) at positions ``offset``.. -> the first block's input (B, T, C)."""
        return self.token_embedding(tokens) + self.positional_embedding[offset : offset + tokens.shape[-1]]

    @property
    def embedding_half(self):
        """The output embedding as a float16 host table, where ``prepare`` kept one."""
        return self._embedding_half

    def logits(self, x: mx.array) -> mx.array:
        """The final norm and the output projection: (B, T, C) -> (B, T, V) float32."""
        x = self.ln(x)
        if self._embedding_half is not None and x.size // x.shape[-1] <= self.ops.LOGITS_MAX_ROWS:
            return self.ops.logits(x, self._embedding_half)
        if self._embedding_t is not None:
            return (x @ self._embedding_t).astype(mx.float32)
        return self.token_embedding.as_linear(x).astype(mx.float32)

    def prepare(self, embedding_half=None) -> None:
        """On the CPU, keep the embedding in float16 for the output projection of
        decoding steps (``ops.logits``), when that holds it exactly; else a
        transposed copy: a one-row ``x @ E.T`` reads the 51k x d matrix against its
        layout. (Products of more rows, a prompt's or an alignment's, go to the BLAS's
        sgemm, which takes either layout: with the float16 table no copy is made.)"""
        self._embedding_t = self._embedding_half = None
        w = self.token_embedding.weight
        if w.size == 0:  # the table let go (int8 kernels): the float16 one as read serves them
            self._embedding_half = embedding_half
            return
        if (
            mx.default_device() == mx.cpu
            and isinstance(self.token_embedding, nn.Embedding)
            and not hasattr(self.token_embedding, "scales")
        ):
            self._embedding_half = self.ops.half_table(w, embedding_half)
            if self._embedding_half is None:
                self._embedding_t = mx.contiguous(w.T)
                mx.eval(self._embedding_t)


class Whisper(nn.Module):
    def __init__(self, dims: ModelDimensions, dtype=mx.float32):
        super().__init__()
        self.dims = dims
        self.dtype = dtype
        self.encoder = AudioEncoder(dims, dtype)
        self.decoder = TextDecoder(dims, dtype)
        # Default alignment heads: every head of the last half of the decoder layers.
        heads = np.zeros((dims.n_text_layer, dims.n_text_head), dtype=bool)
        heads[dims.n_text_layer // 2 :] = True
        self.alignment_heads = [tuple(map(int, p)) for p in np.argwhere(heads)]
        self.suppress_ids: list[int] | None = None

    def prepare(self, embedding_half=None, ops=MlxOps) -> None:
        """Derived weights for fast inference, once the weights are loaded
        (``embedding_half``: the token embedding as read, when it was float16), and the
        ops every module runs (``MlxOps``'s names)."""
        for module in self.modules():
            if isinstance(module, UsesOps):
                module.ops = ops
        for block in (*self.encoder.blocks, *self.decoder.blocks):
            block.attn.fuse_qkv()
        self.decoder.prepare(embedding_half)
        ops.warm_up()

    # The product layers of the blocks, by name within a block: what int8 kernels hold
    # instead (the cross-attention's keys and values stay: each window's are made from them).
    PRODUCTS = (
        *("attn.query", "attn.key", "attn.value", "attn.out", "mlp1", "mlp2"),
        *("cross_attn.query", "cross_attn.out"),
    )
    # Blocks whose products stay float32 under int8: the encoder's first, which the rest
    # amplify (int8 there moved base's encoder output 8.7%, 2.5% with it in float32).
    FLOAT32_BLOCKS = ("encoder.blocks.0",)

    def drop_product_weights(self) -> None:
        """Let the blocks' product weights and the token table go (kernels outside MLX hold
        them quantized; ``FLOAT32_BLOCKS`` keep theirs): MLX's own network cannot run after this."""
        empty = mx.zeros((0,), self.dtype)
        named = [(f"encoder.blocks.{i}", b) for i, b in enumerate(self.encoder.blocks)]
        named += [(f"decoder.blocks.{i}", b) for i, b in enumerate(self.decoder.blocks)]
        for name, block in named:
            if name in self.FLOAT32_BLOCKS:
                continue
            for path in self.PRODUCTS:
                owner, _, layer = path.rpartition(".")
                if owner and not hasattr(block, owner):  # an encoder block has no cross-attention
                    continue
                (getattr(getattr(block, owner), layer) if owner else getattr(block, layer)).weight = empty
            if block.attn.fused_weights is not None:  # its bias stays: the kernels read it
                block.attn._qkv = (empty, block.attn.fused_weights[1])
        self.decoder.token_embedding.weight = empty
        self.float32_released = True

    def set_alignment_heads(self, heads) -> None:
        self.alignment_heads = [(int(a), int(b)) for a, b in heads]

    @property
    def is_multilingual(self) -> bool:
        return self.dims.n_vocab >= 51865

    @property
    def num_languages(self) -> int:
        return self.dims.n_vocab - 51765 - int(self.is_multilingual)

    def embed_audio(self, mel: mx.array) -> mx.array:
        return self.encoder(mel.astype(self.dtype))
