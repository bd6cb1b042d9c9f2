import ctypes
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest


def _global_sgemm() -> int:
    return ctypes.cast(ctypes.CDLL(None).cblas_sgemm, ctypes.c_void_p).value


def test_preloaded_cblas_owns_the_global_sgemm_symbol():
    """MLX binds cblas_sgemm through the global scope: it must resolve to our library
    (the gemv forwarder in front of the BLAS, when it was built)."""
    import subtitler.whisper  # noqa: F401  (preloads before mlx.core)
    from subtitler import _blas

    path = _blas.loaded()
    if path is None:
        pytest.skip("no optimized CBLAS on this machine (see README: Slow on a Linux CPU)")
    if _blas.forwarding():
        from subtitler import _gemv_forward

        ours = ctypes.cast(ctypes.CDLL(_gemv_forward.__file__).cblas_sgemm, ctypes.c_void_p).value
    else:
        ours = ctypes.cast(ctypes.CDLL(path).cblas_sgemm, ctypes.c_void_p).value
    assert ours == _global_sgemm()
    # Everything else (sgemv, LAPACK) still comes from the BLAS itself.
    assert ctypes.cast(ctypes.CDLL(None).cblas_sgemv, ctypes.c_void_p).value == \
        ctypes.cast(ctypes.CDLL(path).cblas_sgemv, ctypes.c_void_p).value


def test_switch_turns_it_off():
    code = "import os; from subtitler import _blas; print(_blas.preload())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "SUBTITLER_BLAS": "0"}).stdout.strip()
    assert out == "None"


def test_forwarder_switch_leaves_the_blas_alone():
    import subtitler.whisper  # noqa: F401
    from subtitler import _blas

    code = ("import ctypes; from subtitler import _blas; p = _blas.preload(); "
            "sgemm = lambda lib: ctypes.cast(ctypes.CDLL(lib).cblas_sgemm, ctypes.c_void_p).value; "
            "print(p, _blas.forwarding(), p is not None and sgemm(None) == sgemm(p))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "SUBTITLER_GEMV_FORWARD": "0"}).stdout.split()
    assert out[0] == str(_blas.loaded())  # the same BLAS as with the forwarder
    assert out[1] == "False"
    if _blas.loaded():
        assert out[2] == "True"  # and MLX's cblas_sgemm is the BLAS's own


@pytest.fixture(scope="module")
def forwarder():
    import subtitler.whisper  # noqa: F401
    from subtitler import _blas

    if _blas.loaded() is None:
        pytest.skip("no optimized CBLAS on this machine")
    if not _blas.forwarding():
        built = list(Path(_blas.__file__).parent.glob("_gemv_forward*.so"))
        compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
        assert not (shutil.which(compiler) and not built), "a C compiler is here but subtitler._gemv_forward was not built"
        pytest.skip("subtitler._gemv_forward was not built (no C compiler at install)")
    yield _blas
    _blas.set_forwarding(True)


# (rows, inner, columns): one row, one column, a few rows against a right-hand matrix
# that fits one cache block or (the last two) spans several with a ragged last one,
# and shapes that stay with sgemm.
SHAPES = [(1, 384, 1152), (1, 64, 1500), (1, 1500, 64), (9, 33, 1), (200, 64, 1), (5, 64, 1500),
          (5, 384, 1536), (3, 7, 5), (16, 64, 100), (5, 1536, 1024), (5, 384, 4100)]


LAYOUTS = ("rows", "columns", "view")


def _operand(rng, rows, cols, layout):
    """A (rows, cols) matrix stored row-major, column-major (a transposed array, which
    MLX passes to the BLAS with the transpose flag), or as a view into a wider array."""
    import mlx.core as mx

    if layout == "columns":
        full = rng.normal(size=(cols, rows)).astype(np.float32)
        return full.T, mx.array(full).T
    full = rng.normal(size=(rows, cols + (3 if layout == "view" else 0))).astype(np.float32)
    return full[:, :cols], mx.array(full)[:, :cols]


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_forwarded_products_equal_sgemm_products(forwarder, m, k, n):
    import mlx.core as mx

    rng = np.random.default_rng(m * 1000 + n)
    for layout_a in LAYOUTS:
        for layout_b in LAYOUTS:
            a_np, a = _operand(rng, m, k, layout_a)
            b_np, b = _operand(rng, k, n, layout_b)
            c_np = rng.normal(size=(n,)).astype(np.float32)
            want = a_np.astype(np.float64) @ b_np
            tol = 1e-4 * np.abs(want).max()
            for on in (True, False):
                forwarder.set_forwarding(on)
                np.testing.assert_allclose(np.array(a @ b), want, rtol=1e-4, atol=tol)
                np.testing.assert_allclose(np.array(mx.addmm(mx.array(c_np), a, b, alpha=0.5, beta=2.0)),
                                           0.5 * want + 2.0 * c_np, rtol=1e-4, atol=tol)
            forwarder.set_forwarding(True)


def test_one_row_products_go_to_gemv_and_big_ones_do_not(forwarder):
    import mlx.core as mx

    w = mx.random.normal((384, 1152))
    heads_q, heads_k = mx.random.normal((1, 6, 1, 64)), mx.random.normal((1, 6, 64, 1500))
    x1, x5, x64 = mx.random.normal((1, 384)), mx.random.normal((5, 384)), mx.random.normal((64, 384))
    mx.eval(w, heads_q, heads_k, x1, x5, x64)

    def count(f):
        before = forwarder.forwarded_count()
        mx.eval(f())
        return forwarder.forwarded_count() - before

    assert count(lambda: x1 @ w) == 1
    assert count(lambda: heads_q @ heads_k) == 6  # one per head
    assert count(lambda: x5 @ w) == 1
    assert count(lambda: x64 @ w) == 0
    forwarder.set_forwarding(False)
    assert count(lambda: x1 @ w) == 0
