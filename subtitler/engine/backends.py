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


_backends: dict[tuple[int, str], Backend] = {}

COMPUTE_TYPES = ("auto", "float32", "int8")


def resolve_compute_type(requested: str = "auto", rows: int = 1) -> str:
    """The compute type ``requested`` means on this machine for decoding ``rows`` beams or
    samples at once: "auto" is int8 where the C decoding step runs and takes that many
    rows (its accuracy holds: benchmarks/compute_types.py), else float32 (MLX runs the
    weights as loaded)."""
    if requested not in COMPUTE_TYPES:
        raise ValueError(f"Unknown compute type '{requested}'; choose from {', '.join(COMPUTE_TYPES)}.")
    if requested != "auto":
        return requested
    from subtitler.engine.kernels import native  # (no MLX: settings resolve this before it loads)

    return "int8" if c_kernels_run() and rows <= native.MAX_ROWS else "float32"


def c_kernels_run() -> bool:
    """Whether the C kernels can run the whole network here: built, taken by this CPU, and
    with a BLAS for their products (``blas.expected``: none with ``SUBTITLER_BLAS=0``, or
    once MLX was imported first). Without one the int8 encoder and prompt kernels cannot
    run, so ``auto`` is float32."""
    from subtitler.engine.kernels import blas, native

    lib = native.library()
    return lib is not None and lib.decoder_supported() and lib.blocks_supported() and blas.expected()


def describe_compute_type(requested: str = "auto") -> str:
    """What ``requested`` runs as here, in words (``subtitler doctor``)."""
    from subtitler.engine.cpu.blocks import describe_int8_products
    from subtitler.engine.kernels import native

    chosen = resolve_compute_type(requested)
    lib = native.library()
    if chosen == "int8" and (lib is None or not lib.decoder_supported()):
        return f"{requested}: the C kernels do not run here, so MLX runs the weights as loaded"
    if chosen == "float32":
        if requested == "auto" and not c_kernels_run():
            return "auto = float32: the C kernels do not run here (not built, not this CPU, or no BLAS)"
        return f"{requested} = float32"
    simd = {2: "AVX-512", 1: "AVX2", 0: "plain C"}[lib.simd_level()]
    encoder = describe_int8_products()
    return f"{requested} = int8: decoding steps in int8 (C kernels, {simd}); encoder: {encoder}"


def load_for(name: str, compute_type: str = "auto", progress=None):
    """A model by name, repo or folder with its backend for ``compute_type`` made, holding
    its weights once: for int8 on the C path its products are quantized as they are read
    and its token table kept in float16 only (no float32 copy of them ever exists), and
    MLX keeps no buffer cache; freed memory is given back after the load."""
    import mlx.core as mx

    from subtitler.engine.kernels.malloc import give_back_freed
    from subtitler.engine.whisper.load import load_model

    int8 = resolve_compute_type(compute_type) == "int8" and c_kernels_run() and mx.default_device() == mx.cpu
    model = load_model(name, progress=progress, int8=int8)
    backend = backend_for(model, compute_type)
    if int8 and not getattr(backend, "reads_no_float32_weights", False):
        from subtitler.errors import ModelError

        raise ModelError(f"The int8 kernels could not take {name}: use the float32 compute type.")
    if int8:
        # MLX's few arrays here (the cross-attention keys and values, the stem's input) need
        # no buffer cache of their own beside the heap's freed blocks (``kernels.malloc``):
        # base's peak RSS on the 2.5-min clip 397-422 MB with it, 381-384 without, no slower.
        mx.set_cache_limit(0)
    mx.clear_cache()
    give_back_freed()  # the file as read and the conversions
    return model


def backend_for(model, compute_type: str = "auto") -> Backend:
    """The backend that runs ``model``: the C kernels where they apply (x86 CPU, plain
    float32 weights, kernels built), else MLX. ``compute_type``: the weights the C
    decoding steps read (int8 or float32; MLX runs the weights as loaded). One per
    model: built on first use, replaced when another compute type is asked for, and
    dropped with the model."""
    from subtitler.engine.cpu.backend import CpuBackend
    from subtitler.engine.whisper.backend import MlxBackend

    key = (id(model), resolve_compute_type(compute_type))
    if getattr(model, "float32_released", False) and key[1] != "int8":
        from subtitler.errors import ModelError

        raise ModelError(
            "This model was loaded for the int8 compute type (its float32 weights were let go): "
            f"load it again for {key[1]}."
        )
    backend = _backends.get(key)
    if backend is None:
        for other in [k for k in _backends if k[0] == key[0]]:
            del _backends[other]  # its copies of the weights go with it
        backend = CpuBackend.build(model, key[1]) or MlxBackend(model)
        _backends[key] = backend
        weakref.finalize(model, _backends.pop, key, None)
    return backend
