"""Our MLX Whisper: ``model`` (the network), ``tokenizer``, ``languages``, ``decoding``,
``timing`` (word times) and ``load`` (weights in every layout we read).

Importing this package does nothing: call ``subtitler.engine.runtime.prepare()``
before the first module here that imports MLX (``model``, ``decoding``, ``load``).
"""
