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


def _compiled(module_glob: str) -> bool:
    """Whether an optional extension was built; fails when a compiler is here but it was not."""
    from subtitler.engine.kernels import blas as _blas

    built = list(Path(_blas.__file__).parent.glob(module_glob))
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    assert built or not shutil.which(compiler), f"a C compiler is here but {module_glob} was not built"
    return bool(built)


def test_a_fast_blas_comes_from_pip_alone_and_owns_mlx_sgemm():
    """On Linux the scipy-openblas32 wheel (a dependency) or a system BLAS is loaded,
    and the cblas_sgemm MLX binds to is ours: the forwarder, or the BLAS's own."""
    from subtitler.engine.kernels import blas as _blas

    if not sys.platform.startswith("linux"):
        pytest.skip("the BLAS preload is for Linux")
    if not _compiled("_gemv_forward*.so") and _blas.loaded() is None:
        pytest.skip("no forwarder (no C compiler at install) and no plainly named BLAS")
    assert _blas.loaded() is not None, _blas.describe()
    assert _blas.mlx_sgemm_address() == _global_sgemm()


def _wheel_blas():
    """The BLAS libraries that pip brings: (kind, path) of scipy-openblas32 and NumPy's own."""
    from subtitler.engine.kernels import blas as _blas

    return [(b.kind, b.path) for b in _blas._candidates() if b.kind in ("scipy-openblas32", "numpy")]


@pytest.mark.parametrize("kind", ["scipy-openblas32", "numpy"])
def test_renamed_wheel_blas_runs_mlx_products(kind):
    """Through the forwarder, MLX's products go to a BLAS whose symbols carry a prefix
    (scipy_cblas_sgemm) or a prefix and 64-bit integers (NumPy's scipy_cblas_sgemm64_),
    with and without the sgemv forwarding, and give the right numbers."""
    if not _compiled("_gemv_forward*.so"):
        pytest.skip("the forwarder was not built (no C compiler at install)")
    paths = [p for k, p in _wheel_blas() if k == kind]
    if not paths:
        pytest.skip(f"{kind} is not installed")
    code = (
        "from subtitler.engine import runtime; runtime.prepare()\n"
        "from subtitler.engine.kernels import blas\n"
        "import mlx.core as mx, numpy as np\n"
        "rng = np.random.default_rng(0)\n"
        "ok = []\n"
        "for m, k, n in [(1, 384, 1152), (5, 384, 1536), (64, 200, 300), (3, 7, 1)]:\n"
        "    a = rng.normal(size=(m, k)).astype(np.float32); b = rng.normal(size=(k, n)).astype(np.float32)\n"
        "    got = np.array(mx.array(a) @ mx.array(b)); want = a.astype(np.float64) @ b\n"
        "    ok.append(bool(np.allclose(got, want, rtol=1e-4, atol=1e-3 * np.abs(want).max())))\n"
        "print(blas.describe()['blas'].split(':')[0], blas.forwarding(), all(ok))\n"
    )
    for forward in ("1", "0"):
        env = {**os.environ, "SUBTITLER_BLAS": paths[0], "SUBTITLER_GEMV_FORWARD": forward}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        assert out.stdout.split() == [kind, str(forward == "1"), "True"], out.stderr


def test_switch_turns_it_off():
    code = "import os; from subtitler.engine.kernels import blas as _blas; print(_blas.preload())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "SUBTITLER_BLAS": "0"},
    ).stdout.strip()
    assert out == "None"


def test_forwarder_switch_leaves_the_blas_alone():
    from subtitler.engine.kernels import blas as _blas

    code = (
        "import ctypes; from subtitler.engine.kernels import blas as _blas; p = _blas.preload(); "
        "print(p, _blas.forwarding(), p is not None and _blas.mlx_sgemm_address() == "
        "ctypes.cast(ctypes.CDLL(None).cblas_sgemm, ctypes.c_void_p).value)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "SUBTITLER_GEMV_FORWARD": "0"},
    ).stdout.split()
    assert out[0] == str(_blas.loaded())  # the same BLAS as with the forwarder
    assert out[1] == "False"
    if _blas.loaded():
        assert out[2] == "True"  # and MLX's cblas_sgemm is the bridge or the BLAS's own


@pytest.fixture(scope="module")
def forwarder():
    from subtitler.engine.kernels import blas as _blas

    if _blas.loaded() is None:
        pytest.skip("no optimized CBLAS on this machine")
    if not _blas.forwarding():
        assert not _compiled("_gemv_forward*.so") or os.environ.get("SUBTITLER_GEMV_FORWARD") == "0"
        pytest.skip("subtitler.engine.kernels._gemv_forward was not built (no C compiler at install)")
    yield _blas
    _blas.set_forwarding(True)


# (rows, inner, columns): one row, one column, a few rows against a right-hand matrix
# that fits one cache block or (the last two) spans several with a ragged last one,
# and shapes that stay with sgemm.
SHAPES = [
    (1, 384, 1152),
    (1, 64, 1500),
    (1, 1500, 64),
    (9, 33, 1),
    (200, 64, 1),
    (5, 64, 1500),
    (5, 384, 1536),
    (3, 7, 5),
    (16, 64, 100),
    (5, 1536, 1024),
    (5, 384, 4100),
]


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
                np.testing.assert_allclose(
                    np.array(mx.addmm(mx.array(c_np), a, b, alpha=0.5, beta=2.0)),
                    0.5 * want + 2.0 * c_np,
                    rtol=1e-4,
                    atol=tol,
                )
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


def test_host_products_read_and_write_row_strided_views():
    """``blas.product`` (the speech detector's products): ``a @ w.T`` through the
    preloaded BLAS, reading a view whose rows are apart and writing into one, in place."""
    from subtitler.engine import runtime
    from subtitler.engine.kernels import blas as _blas

    runtime.prepare()
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, 640)).astype(np.float32)
    w = rng.normal(size=(258, 256)).astype(np.float32)
    out = np.zeros((300, 4, 258), np.float32)
    for f in range(4):
        view = rows[:, 128 * f : 128 * f + 256]  # rows 640 floats apart: not copied
        got = _blas.product(view, w, out=out[:, f])
        assert got is not None and np.shares_memory(got, out)
        np.testing.assert_allclose(
            out[:, f], view.astype(np.float64) @ w.T.astype(np.float64), rtol=1e-4, atol=1e-3
        )
    plain = _blas.product(rows[:, :256].copy(), w)
    np.testing.assert_allclose(plain, out[:, 0], rtol=1e-5, atol=1e-4)
