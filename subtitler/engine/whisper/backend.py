"""The MLX backend (``subtitler.engine.backends.Backend``): the network as it is, on any
device, and its decoding steps.

A backend encodes a window, runs the initial tokens of a window's decoding (the
prompt), takes the decoding steps after them, and runs the pass over a window's
decoded tokens that word timing reads (``alignment``):

- ``MlxBackend`` runs the MLX network (``model``) on any device: Metal, CUDA, CPU.
- ``CpuBackend`` (``subtitler.engine.cpu.backend``) runs the same network by our C
  kernels on x86 CPUs, where they were built and the weights are plain float32.

Nothing else needs to know which one runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import mlx.core as mx
import numpy as np


class MlxSteps:
    """The decoding steps of one window through the MLX model (any device):
    ``steps(tokens)`` appends a token (n,) to each sequence and returns the next
    logits (n, V); ``reorder(rows)`` makes sequence i continue sequence ``rows[i]``.

    For one sequence the initial tokens' keys and values are its cache; ``n``
    sequences share them (``shared``) and each starts a cache of its own, so beam
    search reorders and extends only the rows' own positions."""

    xp = mx  # the array module of the logits

    def __init__(self, decoder, cross_kv, initial_cache, n: int):
        self.decoder, self.cross_kv = decoder, cross_kv
        self.cache, self.shared = (initial_cache, None) if n == 1 else (None, initial_cache)

    def __call__(self, tokens: mx.array) -> mx.array:
        logits, self.cache, _ = self.decoder(tokens[:, None], self.cross_kv, self.cache, shared=self.shared)
        return logits[:, -1]

    def reorder(self, rows: Sequence[int]) -> None:
        if self.cache is not None:  # the rows' own positions; the shared ones stay as they are
            idx = mx.array(rows)
            self.cache = [(mx.take(k, idx, 0), mx.take(v, idx, 0)) for k, v in self.cache]


class MlxBackend:
    """The MLX network as it is."""

    xp = mx  # the array module of the steps' logits
    steps_class = MlxSteps  # what ``steps`` builds (tests swap it)

    def __init__(self, model):
        self.encoder, self.decoder, self.dtype = model.encoder, model.decoder, model.dtype

    def for_rows(self, n: int) -> MlxBackend:
        """The backend that decodes ``n`` rows at once (this one takes any number)."""
        return self

    def encode(self, mel: mx.array) -> list:
        """One window's mel (1, 3000, n_mels) -> the decoder's cross-attention keys and
        values per layer, evaluated."""
        kv = self.decoder.cross_kv(self.encoder(mel.astype(self.dtype)))
        mx.eval(kv)
        return kv

    def prompt(self, tokens: list[int], cross_kv, rows: list[int]):
        """The initial tokens of a window -> the logits (1, len(rows), V) at ``rows`` and
        what the steps continue from (the keys and values of every layer)."""
        logits, cache, _ = self.decoder(mx.array([tokens]), cross_kv, rows=rows)
        return logits, cache

    def steps(self, cross_kv, prefix, n: int, capacity: int):
        """The steps of ``n`` rows after the prompt (``prefix`` from ``prompt``), at most ``capacity``."""
        return self.steps_class(self.decoder, cross_kv, prefix, n)

    def alignment(self, tokens: list[int], cross_kv, rows: list[int], heads: Sequence[tuple[int, int]]):
        """The decoder over ``tokens`` for word timing -> the logits at ``rows`` (R, V) and
        the cross-attention scores before softmax of ``heads`` ((layer, head) pairs), in
        layer order (len(heads), T, S), as host float32 arrays."""
        logits, _, scores = self.decoder(mx.array([tokens]), cross_kv, want_weights=heads, rows=rows)
        weights = mx.concatenate([w[0] for w in scores if w is not None])
        mx.eval(logits, weights)
        return np.array(logits[0], np.float32), np.array(weights, np.float32)
