"""Our MLX Whisper: model, tokenizer, decoding, timing and loading.

Importing this package loads an optimized CBLAS first (see ``subtitler._blas``),
because MLX binds its BLAS symbols when ``mlx.core`` is first imported, and keeps
large freed blocks in the heap (see ``subtitler._malloc``).
"""

from .. import _blas, _malloc

_blas.preload()
_malloc.keep_freed_blocks()

from .load import load_model, resolve_model  # noqa: E402
from .model import ModelDimensions, Whisper  # noqa: E402

__all__ = ["load_model", "resolve_model", "ModelDimensions", "Whisper", "ensure_thread_stream"]


def ensure_thread_stream() -> None:
    """MLX keeps its streams per thread: give a worker thread its own on first use."""
    import mlx.core as mx

    try:
        mx.default_stream(mx.default_device())
    except RuntimeError:
        mx.set_default_stream(mx.new_stream(mx.default_device()))
