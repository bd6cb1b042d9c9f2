"""Where a model runs: the ``Backend`` interface that decoding and word timing talk to,
and ``backend_for``, which picks one per model. The transcription loop asks once and
passes the backend down; nothing below it looks one up.

- ``whisper.backend.MlxBackend`` runs the MLX network on any device (Metal, CUDA, CPU);
- ``cpu.backend.CpuBackend`` runs the same network by our C kernels on x86 CPUs, where
  they were built and the weights are plain float32 (it holds an ``MlxBackend`` for
  what they do not cover).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, Protocol


class Steps(Protocol):
    """The decoding steps of one window: ``steps(tokens)`` appends a token to each row and
    returns the next logits; ``reorder(rows)`` makes row i continue row ``rows[i]``."""

    xp: Any

    def __call__(self, tokens): ...

    def reorder(self, rows: Sequence[int]) -> None: ...


class Backend(Protocol):
    xp: Any  # the array module of the steps' logits (mlx.core or numpy)

    def for_rows(self, n: int) -> Backend:
        """The backend that decodes ``n`` rows at once."""

    def encode(self, mel) -> list:
        """One window's mel (1, 3000, n_mels) -> the cross-attention keys and values per layer."""

    def prompt(self, tokens: list[int], cross_kv, rows: list[int]):
        """The initial tokens -> the logits at ``rows`` and what the steps continue from."""

    def steps(self, cross_kv, prefix, n: int, capacity: int) -> Steps:
        """The steps of ``n`` rows after the prompt, at most ``capacity``."""

    def alignment(self, tokens: list[int], cross_kv, rows: list[int], heads: Sequence[tuple[int, int]]):
        """The logits at ``rows`` and the alignment heads' cross-attention scores (host arrays)."""


_backends: dict[int, Backend] = {}


def backend_for(model) -> Backend:
    """The backend that runs ``model``: the C kernels where they apply (x86 CPU, plain
    float32 weights, kernels built), else MLX. Built once per model and dropped with it."""
    from subtitler.engine.cpu.backend import CpuBackend
    from subtitler.engine.whisper.backend import MlxBackend

    key = id(model)
    backend = _backends.get(key)
    if backend is None:
        backend = CpuBackend.build(model) or MlxBackend(model)
        _backends[key] = backend
        weakref.finalize(model, _backends.pop, key, None)
    return backend
