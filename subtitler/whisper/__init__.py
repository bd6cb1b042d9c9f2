"""Our MLX Whisper: model, tokenizer, decoding, timing and loading.

Importing this package loads an optimized CBLAS first (see ``subtitler._blas``),
because MLX binds its BLAS symbols when ``mlx.core`` is first imported.
"""

from .. import _blas

_blas.preload()

from .load import load_model, resolve_model  # noqa: E402
from .model import ModelDimensions, Whisper  # noqa: E402

__all__ = ["load_model", "resolve_model", "ModelDimensions", "Whisper"]
