import ctypes

import pytest


def test_preloaded_cblas_owns_the_global_sgemm_symbol():
    """MLX binds cblas_sgemm through the global scope: it must resolve to our library."""
    import subtitler.whisper  # noqa: F401  (preloads before mlx.core)
    from subtitler import _blas

    path = _blas.loaded()
    if path is None:
        pytest.skip("no optimized CBLAS on this machine (see README: Slow on a Linux CPU)")
    ours = ctypes.cast(ctypes.CDLL(path).cblas_sgemm, ctypes.c_void_p).value
    resolved = ctypes.cast(ctypes.CDLL(None).cblas_sgemm, ctypes.c_void_p).value
    assert ours == resolved


def test_switch_turns_it_off():
    import subprocess
    import sys

    code = "import os; from subtitler import _blas; print(_blas.preload())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "SUBTITLER_BLAS": "0"}).stdout.strip()
    assert out == "None"
