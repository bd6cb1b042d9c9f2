"""Process set-up for the engine, done by the entry points and never at import.

``prepare()`` must run before anything imports ``mlx.core``: on Linux it loads a fast
CBLAS into the global symbol scope (MLX binds ``cblas_sgemm`` when it is first
loaded; see ``cpu.blas``) and keeps large freed blocks in the heap (``cpu.malloc``).
The CLI, the window, batch workers, the tests and the benchmarks call it first.
"""

from __future__ import annotations

import logging
import sys

_prepared = False


def prepare() -> None:
    """Set the process up for the engine. Idempotent; cheap after the first call."""
    global _prepared
    if _prepared:
        return
    _prepared = True
    from subtitler.engine.kernels import blas, malloc

    if blas.preload() is None and sys.platform.startswith("linux"):
        logging.getLogger(__name__).info(
            "no fast BLAS was loaded: MLX's reference BLAS runs the matrix products, 15-25x slower "
            "(subtitler doctor says why)"
        )
    malloc.keep_freed_blocks()


def ensure_thread_stream() -> None:
    """MLX keeps its streams per thread: give a worker thread its own on first use."""
    import mlx.core as mx

    try:
        mx.default_stream(mx.default_device())
    except RuntimeError:
        mx.set_default_stream(mx.new_stream(mx.default_device()))


def has_gpu_backend() -> bool:
    """Whether MLX here runs on a GPU (Metal on Apple silicon, or the mlx[cuda] wheel),
    told without importing MLX."""
    import importlib.util
    import platform
    import sys

    if sys.platform == "darwin" and platform.machine() == "arm64":
        return True
    return importlib.util.find_spec("mlx_cuda") is not None
