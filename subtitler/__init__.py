"""subtitler: video in, well-timed editable subtitles out, with Whisper on MLX.

The package root imports nothing heavy; the engine lives in ``subtitler.engine.whisper``
and ``subtitler.engine.transcribe``, the editing core in ``document``/``edits``/``checks``.
"""

__version__ = "0.1.0"
