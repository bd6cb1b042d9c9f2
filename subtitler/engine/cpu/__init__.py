"""The native CPU backend: the Whisper network by the C kernels of ``engine.kernels``."""
