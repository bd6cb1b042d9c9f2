"""The CPU replacements for MLX's scalar kernels give MLX's answers, through the C
kernels and through the NumPy/MLX fallback alike."""

import ctypes
import shutil
import sysconfig
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

from subtitler.engine.kernels import blas as _blas
from subtitler.engine.kernels import native
from subtitler.engine.kernels import ops as kernel_ops
from subtitler.engine.whisper.decoding import top_indices
from subtitler.engine.whisper.tokenizer import get_tokenizer


@pytest.fixture(params=["c", "portable c", "fallback"])
def kernels(request, monkeypatch):
    """Run a test with the C kernels, with their plain C build (what CPUs other than x86
    run), then without them."""
    lib = native.library()
    if request.param == "portable c":
        monkeypatch.setattr(native, "_lib", request.getfixturevalue("portable_kernels"))
    elif request.param == "c":
        if lib is None:
            built = list(Path(kernel_ops.__file__).parent.glob("_kernels*.so"))
            compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
            assert not (shutil.which(compiler) and not built), (
                "a C compiler is here but _kernels was not built"
            )
            pytest.skip("subtitler.engine.kernels._kernels was not built (no C compiler at install)")
    else:
        monkeypatch.setattr(native, "_lib", False)
    return request.param


def test_exp_rows_are_accurate_and_sum(kernels):
    rng = np.random.default_rng(5)
    a = np.concatenate([rng.uniform(-80, 10, (6, 3000)), np.full((1, 3000), -np.inf)]).astype(np.float32)
    a[2, ::7] = -np.inf
    rows = a[:, :2999]  # a view: the row stride is not the row length
    shifted = rows - np.nan_to_num(
        rows.max(axis=1, keepdims=True), neginf=0.0
    )  # rounded to float32 as the kernels do
    want = np.exp(shifted.astype(np.float64))
    last_column = a[:, 2999].copy()
    sums = kernel_ops._exp_rows_inplace(rows)  # in place, on the view
    got = rows
    normal = want[:6] > 1e-30  # relative error where the result is a normal float
    assert (np.abs(got[:6] - want[:6])[normal] / want[:6][normal]).max() < 3e-7
    assert np.allclose(sums[:, 0], want.sum(axis=1), rtol=1e-5)
    assert (got[6] == 0).all() and sums[6, 0] == 0  # a fully masked row
    np.testing.assert_array_equal(a[:, 2999], last_column)  # nothing written past the view


def test_gelu_host_path_on_big_inputs(kernels):
    x = mx.array(np.random.default_rng(6).normal(0, 4, (1500, 1536)).astype(np.float32))
    assert mx.abs(kernel_ops.gelu(x) - nn.gelu(x)).max().item() < 2e-6


def test_gelu_matches_the_erf_form(kernels):
    x = mx.array(np.random.default_rng(0).normal(0, 4, (64, 1536)).astype(np.float32))
    assert mx.abs(kernel_ops.gelu(x) - nn.gelu(x)).max().item() < 2e-6


def test_logsumexp_matches_mlx_including_masked_rows():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 6, (4, 51864)).astype(np.float32)
    x[1, ::3] = -np.inf
    x[3] = -np.inf  # a fully masked row stays -inf
    a, b = (
        np.array(kernel_ops.logsumexp(mx.array(x))),
        np.array(mx.logsumexp(mx.array(x), axis=-1, keepdims=True)),
    )
    exact = np.log(np.exp(x[:3].astype(np.float64)).sum(axis=-1, keepdims=True))
    assert np.abs(a[:3] - exact).max() < 5e-6  # MLX's own is 2e-5 off here
    assert np.abs(a[:3] - b[:3]).max() < 1e-4
    assert a[3, 0] == -np.inf


@pytest.mark.parametrize("rows", [1, 40])
def test_logsumexp_of_host_logits_by_the_kernel(rows, kernels):
    """NumPy logits (a step's row, an alignment pass's rows split over the workers, a
    strided slice of the timestamp columns) by ``logsumexp_rows``: float64's values
    within float32 rounding, masked rows -inf, an inf kept."""
    rng = np.random.default_rng(3)
    x = rng.normal(0, 8, (rows, 51865)).astype(np.float32)
    x[0, ::5] = -np.inf
    if rows > 2:
        x[1] = -np.inf
        x[2, -7] = np.inf
    tol = 1e-6 if native.library() is not None else 2e-5  # NumPy's float32 sum is coarser
    for a in (x, x[:, 50364:]):
        got = kernel_ops.logsumexp(a)
        wide = a.astype(np.float64)
        peak = np.where(np.isfinite(wide.max(-1, keepdims=True)), wide.max(-1, keepdims=True), 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            exact = np.log(np.exp(wide - peak).sum(-1, keepdims=True)) + peak
        assert got.shape == (rows, 1) and got.dtype == np.float32
        finite = np.isfinite(exact)
        assert (
            np.abs(got[finite] - exact[finite]).max() < tol * 30
        )  # values near 30: 1-2 units in the last place
        if rows > 2:
            assert got[1, 0] == -np.inf and got[2, 0] == np.inf


@pytest.mark.parametrize("d64", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_long_attention_matches_mlx(masked, d64, kernels, monkeypatch):
    """Heads as the model hands them over: strided views of one fused projection,
    keys and values transposed or not, with and without a causal mask; by the
    kernel for heads of 64 and by the one through sgemm. 301 rows and keys: not
    whole blocks of 6 rows or panels of 16 keys."""
    used = []
    monkeypatch.setattr(kernel_ops, "_attention_heads", _spy(kernel_ops._attention_heads, used))
    monkeypatch.setattr(kernel_ops, "D64_KERNEL", d64)
    rng = np.random.default_rng(2)
    t, h, d = 301, 6, 64
    fused = mx.array(rng.normal(0, 2, (1, t, 3 * h * d)).astype(np.float32))
    q, k, v = (part.reshape(1, t, h, d).transpose(0, 2, 1, 3) for part in mx.split(fused, 3, axis=-1))
    mask = nn.MultiHeadAttention.create_additive_causal_mask(t) if masked else None
    scores = (q * 0.125) @ k.swapaxes(-1, -2)
    want = mx.softmax(scores if mask is None else scores + mask, axis=-1, precise=True) @ v
    want = want.transpose(0, 2, 1, 3).reshape(1, t, -1)
    for kt, vv in (
        (k.swapaxes(-1, -2), v),
        (mx.contiguous(k.swapaxes(-1, -2)), mx.contiguous(v.swapaxes(-1, -2)).swapaxes(-1, -2)),
    ):
        got = kernel_ops.attention(q, kt, vv, 0.125, mask)
        assert got.shape == (1, t, h * d)
        assert mx.abs(got - want).max().item() < 1e-4
    assert bool(used) == (kernels != "fallback" and _blas.sgemm_address() is not None)


@pytest.mark.parametrize("masked", [False, True])
def test_long_attention_avx512_build_gives_the_avx2_values(masked):
    """attention_d64's AVX-512 build (panels of 32) gives the AVX2 build's values bit for
    bit: each value's multiply-adds in the same order. 301 rows and 203 keys, so the
    last blocks and panels are partial; keys and values transposed as the
    cross-attention passes them."""
    lib = native.library()
    if lib is None or not lib.blocks_supported():
        pytest.skip("the C kernels do not run here")
    if "avx512f" not in Path("/proc/cpuinfo").read_text().split():
        pytest.skip("no AVX-512 on this CPU")
    rng = np.random.default_rng(5)
    t, s, h = 301, 203, 6
    q = rng.normal(0, 2, (t, h * 64)).astype(np.float32)
    kt = rng.normal(0, 2, (h, 64, s)).astype(np.float32)
    vt = rng.normal(0, 2, (h, 64, s)).astype(np.float32)
    mask = np.triu(np.full((t, s), -np.inf, np.float32), 1) if masked else None
    outs = []
    try:
        for panel in (16, 32):
            lib.attention_d64_panel(panel)
            out = np.empty((t, h * 64), np.float32)
            assert (
                lib.attention_d64(
                    h,
                    t,
                    s,
                    0.125,
                    q.ctypes.data,
                    64,
                    h * 64,
                    kt.ctypes.data,
                    64 * s,
                    s,
                    1,
                    vt.ctypes.data,
                    64 * s,
                    s,
                    1,
                    out.ctypes.data,
                    h * 64,
                    None if mask is None else mask.ctypes.data,
                    2,
                )
                == native.OK
            )
            outs.append(out)
    finally:
        lib.attention_d64_panel(0)
    assert np.array_equal(outs[0], outs[1])
    scores = np.einsum("thd,hds->hts", (q * 0.125).reshape(t, h, 64).astype(np.float64), kt)
    if mask is not None:
        scores = scores + mask
    w = np.exp(scores - scores.max(-1, keepdims=True))
    want = np.einsum("hts,hds->thd", w / w.sum(-1, keepdims=True), vt).reshape(t, -1)
    assert np.abs(outs[1] - want).max() < 1e-4


def _spy(fn, calls: list):
    def wrapper(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)

    return wrapper


def test_layer_norm_matches_mlx(kernels):
    rng = np.random.default_rng(7)
    norm = nn.LayerNorm(384)
    norm.weight, norm.bias = (
        mx.array(rng.normal(1, 0.3, 384).astype(np.float32)),
        mx.array(rng.normal(0, 0.3, 384).astype(np.float32)),
    )
    x = mx.array((rng.normal(0, 3, (1, 1500, 384)) + rng.normal(0, 5, (1, 1500, 1))).astype(np.float32))
    got, want = kernel_ops.layer_norm(x, norm), norm(x)
    assert got.shape == want.shape
    assert mx.abs(got - want).max().item() < 2e-5


def test_half_logits_are_the_float32_product(kernels):
    rng = np.random.default_rng(8)
    table = mx.array(
        rng.normal(0, 0.05, (5003, 384)).astype(np.float16).astype(np.float32)
    )  # exact in float16
    half = kernel_ops.half_table(table)
    if kernels != "c":  # the float16 table needs the x86 build (F16C)
        assert half is None
        return
    assert half is not None and half.dtype == np.float16
    assert kernel_ops.half_table(table + 1e-4) is None  # not exact in float16: keep float32
    for n in range(1, kernel_ops.LOGITS_MAX_ROWS + 1):
        x = mx.array(rng.normal(0, 1, (n, 1, 384)).astype(np.float32))
        got, want = kernel_ops.logits(x, half), x @ table.T
        assert got.shape == (n, 1, 5003)
        assert mx.abs(got - want).max().item() < 1e-4 * mx.abs(want).max().item()
    with pytest.raises(ValueError):
        kernel_ops.logits(mx.zeros((kernel_ops.LOGITS_MAX_ROWS + 1, 384)), half)


def test_int8_rows_are_the_products_of_their_dequantized_weights(kernels):
    """``quantize_rows`` keeps each row within half a step of its weights, and the int8
    row kernel the decoding step uses (AVX2, or plain C elsewhere) gives NumPy's product
    of the dequantized rows, for every row count the step takes; 389 columns, so each
    row ends in a partial vector."""
    rng = np.random.default_rng(9)
    w = rng.normal(0, 0.05, (1003, 389)).astype(np.float32)
    w[7] = 0  # a row of zeros
    w[11, 5] = 3.0  # an outlier sets its row's scale
    q, scale = kernel_ops.quantize_rows(w)
    assert q.dtype == np.int8 and scale.shape == (1003,) and scale[7] == 1 and not q[7].any()
    assert (np.abs(q[11]) <= 127).all() and q[11, 5] == 127
    assert (np.abs(q * scale[:, None] - w) <= scale[:, None] * 0.5001).all()
    columns = rng.uniform(0.5, 20, 389).astype(np.float32)  # a norm's weights folded in
    qc, sc = kernel_ops.quantize_rows(w, columns=columns)
    assert (np.abs(qc * sc[:, None] - w * columns) <= sc[:, None] * 0.5001).all()
    # a float16 table as read, with its norm's bias carried through: the same as from float32
    half, bias = w.astype(np.float16), rng.normal(0, 1, 389).astype(np.float32)
    qh, sh, dots = kernel_ops.quantize_rows(half, columns=columns, dot_with=bias)
    q32, s32 = kernel_ops.quantize_rows(half.astype(np.float32), columns=columns)
    assert np.array_equal(qh, q32) and np.array_equal(sh, s32)
    assert np.allclose(dots, half.astype(np.float64) @ bias, rtol=1e-4, atol=1e-5)
    if kernels == "fallback":
        return  # the row kernel is C only
    dequantized = q.astype(np.float64) * scale[:, None]
    for n in range(1, kernel_ops.LOGITS_MAX_ROWS + 1):
        x = rng.normal(0, 1, (n, 389)).astype(np.float32)
        got, want = kernel_ops.product_q8(x, q, scale), x @ dequantized.T
        assert got.shape == (n, 1003)
        assert np.abs(got - want).max() < 2e-5 * np.abs(want).max()


@pytest.mark.parametrize("xp", [mx, np], ids=["mlx", "numpy"])
def test_top_indices_finds_the_k_largest_with_ties_and_masks(xp):
    rng = np.random.default_rng(3)
    for trial in range(60):
        n, size, k = int(rng.integers(1, 6)), int(rng.integers(50, 60000)), int(rng.integers(1, 7))
        x = rng.normal(size=(n, size)).astype(np.float32)
        if trial % 3 == 0:
            x[:, rng.integers(0, size, size // 2)] = -np.inf
        if trial % 4 == 0:
            x = np.round(x, 1)  # many ties
        got = np.array(top_indices(xp.array(x), k))
        assert got.shape == (n, k)
        for row, idx in zip(x, got):
            assert len(set(idx.tolist())) == k
            assert np.array_equal(np.sort(row[idx]), np.sort(row)[-k:])


@pytest.mark.parametrize("rows", [1, 5])
def test_decoding_steps_by_the_c_kernel_match_mlx(model, rows):
    """``cpu_decoder``'s whole-step kernel against the MLX decoder, step by step: the
    same logits from the same prompt, with beam-search reorders in between."""
    from subtitler.engine.whisper.backend import MlxSteps

    backend = _cpu_backend(model)
    if backend.step_kernel is None:
        pytest.skip("the C decoding step does not run here")
    cross = backend.encode(_jfk_window())
    tok = get_tokenizer(False)
    prompt = mx.array([[*tok.sot_sequence, *tok.encode(" And so my fellow Americans")]])
    _, cache, _ = model.decoder(prompt, cross)
    ours, theirs = backend.steps(cross, cache, rows, capacity=16), MlxSteps(model.decoder, cross, cache, rows)
    rng = np.random.default_rng(3)
    for step in range(12):
        tokens = rng.integers(0, 50000, rows).astype(np.int32)
        a, b = ours(tokens), np.array(theirs(mx.array(tokens)))
        assert a.shape == b.shape == (rows, model.dims.n_vocab)
        assert np.abs(a - b).max() < 2e-4, f"step {step}"
        assert (a.argmax(-1) == b.argmax(-1)).all()
        if rows > 1 and step % 3 == 1:
            order = rng.integers(0, rows, rows).tolist()
            ours.reorder(order)
            theirs.reorder(order)
    with pytest.raises(ValueError):  # past its capacity
        for _ in range(8):
            ours(tokens)


SIMD = {"avx512": 2, "avx2": 1}


@pytest.fixture(params=list(SIMD))
def simd(request):
    """Run a test with the row kernels on AVX-512, then on AVX2 (the same machine, the
    wider set turned off); skipped where this CPU lacks the set."""
    lib = native.library()
    if not lib:
        pytest.skip("subtitler.engine.kernels._kernels was not built")
    level = SIMD[request.param]
    lib.set_simd_limit(level)
    try:
        if lib.simd_level() != level:
            pytest.skip(f"this CPU has no {request.param}")
        yield request.param
    finally:
        lib.set_simd_limit(2)


@pytest.mark.parametrize("k", [389, 512])
def test_the_int8_row_kernel_on_each_instruction_set_matches_numpy(simd, k):
    """The 16-wide (AVX-512) and 8-wide (AVX2) int8 row kernels, every input count and a
    row length with a tail, against NumPy over the dequantized weights."""
    rng = np.random.default_rng(5)
    q, scale = kernel_ops.quantize_rows(rng.normal(0, 0.05, (1003, k)).astype(np.float32))
    dequantized = q.astype(np.float64) * scale[:, None]
    for n in range(1, kernel_ops.LOGITS_MAX_ROWS + 1):
        x = rng.normal(0, 1, (n, k)).astype(np.float32)
        got, want = kernel_ops.product_q8(x, q, scale), x @ dequantized.T
        assert np.abs(got - want).max() < 2e-5 * np.abs(want).max(), (simd, n)


@pytest.mark.parametrize("k", [100, 389, 1536, 5120])
def test_the_int8_row_kernel_by_integer_products_matches_numpy(k):
    """``rows_q8_int16`` (AVX2: each input row rounded to int16 at the largest magnitude
    that keeps k products of int8 weights inside int32, then integer products) against
    NumPy over the dequantized weights: every input count, a tail, and k up to 5120,
    within the inputs' rounding (one part in 32767 at k = 389, in 3302 at 5120)."""
    lib = native.library()
    if lib is None or not lib.rows_q8_int16_supported():
        pytest.skip("the integer row kernel runs on AVX2 without AVX-512")
    rng = np.random.default_rng(k)
    q, scale = kernel_ops.quantize_rows(rng.normal(0, 0.05, (203, k)).astype(np.float32))
    q[0] = -127  # the largest sum there is, with x's largest magnitude throughout
    dequantized = q.astype(np.float64) * scale[:, None]
    top = min(32767, (2**31 - 1) // (127 * k))
    for n in range(1, kernel_ops.LOGITS_MAX_ROWS + 1):
        x = rng.normal(0, 1, (n, k)).astype(np.float32)
        x[0] = -np.abs(x[0]).max()
        got, want = kernel_ops.product_q8(x, q, scale, int16_inputs=True), x @ dequantized.T
        error = np.abs(got - want).max() / np.abs(want).max()
        assert error < 3 / top and np.isclose(got[0, 0], want[0, 0], rtol=1e-5), (n, error)
    assert 1 / top > 2e-5  # (the float row kernel's bound: this one's is looser)


def test_the_integer_row_kernel_declines_where_it_cannot_run(portable_kernels):
    """The plain C build (and a CPU with AVX-512, whose 16-wide float kernel stays) says so,
    writing nothing; the step then multiplies as ``rows_q8`` does."""
    assert not portable_kernels.rows_q8_int16_supported()
    q, scale = np.ones((16, 32), np.int8), np.ones(16, np.float32)
    x, out = np.ones((1, 32), np.float32), np.zeros((1, 16), np.float32)
    args = (q.ctypes.data, scale.ctypes.data, 16, 32, x.ctypes.data, 1, out.ctypes.data)
    assert portable_kernels.product_q8_int16(*args) == native.UNSUPPORTED and not out.any()
    many = (3, 16, 32, x.ctypes.data, q.ctypes.data, scale.ctypes.data, scale.ctypes.data, out.ctypes.data, 1)
    assert portable_kernels.gemm_q8_int16(*many) == native.UNSUPPORTED and not out.any()
    lib = native.library()
    if lib is not None and lib.rows_q8_int16_supported():
        assert lib.product_q8_int16(*args[:5], 9, args[6]) == native.UNSUPPORTED  # 9 rows: past LOGITS_MAX_N


@pytest.mark.parametrize("rows", [1, 5])
@pytest.mark.parametrize("int16_inputs", [False, True])
def test_int8_decoding_steps_follow_the_float32_steps(model, rows, simd, int16_inputs):
    """The C step over int8 weights (compute type int8) against the float32 one, from the
    same prompt along the same tokens: the same choice on a real window's text, and next-
    token distributions a KL divergence of about 1e-4 apart (single logits move by up to
    0.45 where they reach 13), with the products' inputs in float32 or rounded to int16
    (the AVX2 default: the same divergence, to 1%)."""
    from subtitler.engine.cpu import decoder as cpu_decoder

    backend = _cpu_backend(model)
    if backend.step_kernel is None:
        pytest.skip("the C decoding step does not run here")
    int8 = cpu_decoder.StepKernel.build(model.decoder, "int8")
    assert int8.weights_kind == cpu_decoder.WEIGHTS_Q8
    cross = backend.encode(_jfk_window())
    tok = get_tokenizer(False)
    text = tok.encode(" And so my fellow Americans, ask not what your country can do for you")
    prompt = mx.array([[*tok.sot_sequence, tok.no_timestamps]])
    _, cache, _ = model.decoder(prompt, cross)
    if int16_inputs and not native.library().rows_q8_int16_supported():
        pytest.skip("the integer row kernel runs on AVX2 without AVX-512")
    ours = int8.session(cross, cache, rows, 32, int16_inputs=int16_inputs)
    theirs = backend.steps(cross, cache, rows, 32)
    agree, divergence = 0, []
    for step, token in enumerate(text):
        tokens = np.full(rows, token, np.int32)
        a, b = ours(tokens), theirs(tokens)
        assert np.abs(a - b).max() < 0.05 * np.abs(b).max(), f"step {step}"
        agree += int((a.argmax(-1) == b.argmax(-1)).all())
        la, lb = (x - x.max(-1, keepdims=True) for x in (a, b))
        la, lb = (x - np.log(np.exp(x).sum(-1, keepdims=True)) for x in (la, lb))
        divergence.append(float((np.exp(lb) * (lb - la)).sum(-1).max()))  # KL(float32 || int8)
    assert agree >= len(text) - 1
    assert np.mean(divergence) < 1e-3 and max(divergence) < 5e-3, divergence
    with pytest.raises(ValueError):
        cpu_decoder.StepKernel.build(model.decoder, "bf16")


def test_cross_keys_and_values_round_to_float16_and_to_int8_as_numpy_does():
    """The int8 steps' cross keys and values: float16 by F16C (NumPy's bits, tails
    included), or int8 with a scale per head and position (its 64 values' largest
    magnitude to 127, to nearest; a position of zeros gets scale 1), as NumPy rounds."""
    from subtitler.engine.cpu import decoder as cpu_decoder

    if cpu_decoder._library() is None:
        pytest.skip("the C decoding step does not run here")
    values = np.random.default_rng(1).normal(0, 3, 1003).astype(np.float32)
    values[:4] = [65504.0, 1e-8, -0.0, 2.0**-15]
    assert np.array_equal(cpu_decoder._halves(values), values.astype(np.float16).view(np.uint16))
    kv = np.random.default_rng(2).normal(0, 2, (6, 64, 1501)).astype(np.float32)
    kv[2, :, 7] = 0.0
    kv[4, 5, 9] = 100.0  # one large value: the rest of its position round coarsely
    q, scale = cpu_decoder._int8_positions(kv)
    peak = np.abs(kv).max(axis=1)
    want_scale = np.where(peak > 0, peak / np.float32(127), 1).astype(np.float32)
    assert np.array_equal(scale, want_scale) and scale[2, 7] == 1.0
    want = np.clip(np.rint(kv * (np.float32(1) / want_scale)[:, None, :]), -127, 127)
    assert np.array_equal(q, want.astype(np.int8))
    assert np.abs(q.astype(np.float32) * scale[:, None, :] - kv).max() <= peak.max() / 254 * 1.0001


@pytest.mark.parametrize("rows", [1, 5])
@pytest.mark.parametrize("kind,bound", [("float16", 1e-5), ("int8", 1e-4)])
def test_int8_steps_read_the_cross_keys_and_values_in_fewer_bytes_at_little_cost(model, rows, kind, bound):
    """The int8 steps read the window's cross-attention keys and values in float16, or in
    int8 (the default: a quarter of float32's bytes): along a real window's text their
    next-token distributions stay within a KL divergence of 1e-5 (float16) or 1e-4 (int8,
    2e-5 measured; int8 weights move them by 1e-4) of the same steps over float32 ones,
    with the same choices."""
    from subtitler.engine.cpu import decoder as cpu_decoder

    backend = _cpu_backend(model)
    if backend.step_kernel is None:
        pytest.skip("the C decoding step does not run here")
    int8 = cpu_decoder.StepKernel.build(model.decoder, "int8")
    cross = backend.encode(_jfk_window())
    tok = get_tokenizer(False)
    text = tok.encode(" And so my fellow Americans, ask not what your country can do for you")
    _, cache, _ = model.decoder(mx.array([[*tok.sot_sequence, tok.no_timestamps]]), cross)
    fewer, full = (
        int8.session(cross, cache, rows, 32, cross=kind),
        int8.session(cross, cache, rows, 32, "float32"),
    )
    assert int8.session(cross, cache, rows, 32)._model.cross_kind == cpu_decoder.CROSS_KINDS.index("int8")
    divergence = []
    for token in text:
        tokens = np.full(rows, token, np.int32)
        a, b = fewer(tokens), full(tokens)
        assert (a.argmax(-1) == b.argmax(-1)).all() and 0 < np.abs(a - b).max() < 0.1
        la, lb = (x - x.max(-1, keepdims=True) for x in (a, b))
        la, lb = (x - np.log(np.exp(x).sum(-1, keepdims=True)) for x in (la, lb))
        divergence.append(float((np.exp(lb) * (lb - la)).sum(-1).max()))
    assert max(divergence) < bound, divergence
    with pytest.raises(ValueError):
        int8.session(cross, cache, rows, 32, cross="int4")


@pytest.mark.parametrize(
    "rows,sgemm", [(3, "onednn"), (40, "onednn"), (40, "blas"), (3, "integers"), (40, "integers")]
)
def test_int8_logits_over_many_rows_are_the_row_kernels(model, rows, sgemm, monkeypatch):
    """The int8 output embedding over word timing's text rows (by integer products over
    int16 inputs on AVX2, else sgemm over the table widened a block at a time: oneDNN's, or
    the BLAS's without it) gives the row kernel's logits (a step's): to float32 rounding, to
    the inputs' rounding (a 32767th of a row's largest value) by integers."""
    from subtitler.engine.cpu import decoder as cpu_decoder

    if native.library() is None or not native.library().decoder_supported():
        pytest.skip("the C decoding step does not run here")
    if sgemm == "integers":
        if not native.library().rows_q8_int16_supported():
            pytest.skip("the integer products run on AVX2 without AVX-512")
    else:
        monkeypatch.setattr(cpu_decoder, "_integer_products", lambda lib: False)
    if sgemm == "blas":
        monkeypatch.setattr(cpu_decoder._dnnl, "library", lambda: None)
    elif sgemm == "onednn" and cpu_decoder._dnnl.library() is None:
        pytest.skip("oneDNN is not installed")
    int8 = cpu_decoder.StepKernel.build(model.decoder, "int8")
    q, scale, bias = int8.table
    x = np.random.default_rng(rows).normal(0, 1, (rows, q.shape[1])).astype(np.float32)
    z = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + int8.eps)
    want = np.concatenate([kernel_ops.product_q8(z[i : i + 8], q, scale) for i in range(0, rows, 8)]) + bias
    got = int8.logits(x)
    assert got.shape == (rows, q.shape[0])
    assert np.abs(got - want).max() < (1e-4 if sgemm == "integers" else 1e-5) * np.abs(want).max()
    assert (got.argmax(-1) == want.argmax(-1)).all()


def _jfk_window() -> mx.array:
    """The first (only) window of jfk.flac's log-mel, (1, 3000, 80)."""
    from conftest import JFK

    from subtitler.engine import audio

    mel = audio.log_mel_spectrogram(audio.load_audio(str(JFK)), 80, padding=audio.HOP_LENGTH)
    return mx.array(audio.pad_or_trim(mel[: audio.N_FRAMES]))[None]


def _cpu_backend(model):
    from subtitler.engine.backends import backend_for
    from subtitler.engine.cpu.backend import CpuBackend

    backend = backend_for(model, "float32")
    if not isinstance(backend, CpuBackend):
        pytest.skip("the C kernels do not run here")
    return backend


def test_encoder_blocks_by_the_c_kernel_match_mlx(model):
    """The encoder by ``cpu_blocks`` (its stem and its blocks) against MLX on a real
    window: the same audio features (to float32 rounding)."""
    from conftest import JFK

    from subtitler.engine import audio

    backend = _cpu_backend(model)
    if backend.blocks is None or backend.stem is None:
        pytest.skip("the C encoder does not run here")
    mel = audio.log_mel_spectrogram(audio.load_audio(str(JFK)), 80, padding=audio.HOP_LENGTH)
    window = mx.array(audio.pad_or_trim(mel[: audio.N_FRAMES]))[None]
    ours = np.array(backend.embed_audio(window))
    theirs = np.array(model.embed_audio(window))  # the model is the MLX network alone
    assert ours.shape == theirs.shape == (1, 1500, model.dims.n_audio_state)
    assert np.abs(ours - theirs).max() < 1e-4 * np.abs(theirs).max()


def test_int8_encoder_blocks_follow_the_float32_blocks(model):
    """The encoder's blocks as the int8 compute type builds them (int8 products: weights per
    output row, activations per row, asymmetric, by oneDNN's integer product or ours; the first
    block in float32) against the float32 blocks on a real window: features on average
    within 3% and every position's pointing the same way (tiny.en: 2.6% and a cosine of
    0.9992 at worst with oneDNN's 8-bit activations, 2.0% and 0.9996 with our 11-bit
    ones). With the first block in int8 too they move further (4.0%, 0.994; CTranslate2's
    int8 encoder: 4.8%, 0.994): the later blocks amplify what it moves."""
    from subtitler.engine.cpu import blocks as cpu_blocks

    backend = _cpu_backend(model)
    if backend.blocks is None or backend.stem is None:
        pytest.skip("the C encoder does not run here")
    if cpu_blocks._integer_product(native.library()) is None:
        pytest.skip("no integer product runs here (oneDNN with VNNI, or our AVX2 one)")
    enc = model.encoder
    x = backend.stem(_jfk_window())
    want = np.array(backend.blocks.encode(x.copy()))

    def against_float32(prefix):
        blocks = cpu_blocks.Blocks.build(enc.blocks, enc.ln_post, "int8", True, None, prefix)
        got = np.array(blocks.encode(x.copy()))
        assert got.shape == want.shape == (1, 1500, model.dims.n_audio_state)
        cos = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
        return np.abs(got - want).mean() / np.abs(want).mean(), cos.min()

    error, worst = against_float32("encoder.blocks")  # as the backend builds it
    assert error < 0.03 and worst > 0.998, (error, worst)
    all_int8 = against_float32("")  # no block named: every block in int8
    assert all_int8[0] > error and all_int8[1] < worst, all_int8


@pytest.mark.parametrize(
    "m,n,k", [(1, 16, 2), (7, 32, 6), (1500, 1152, 384), (13, 384, 1536), (25, 48, 5120)]
)
def test_the_avx2_integer_product_is_numpy_s_exactly(m, n, k, simd):
    """``q8_gemm`` (11-bit activations x int8 weights, 16-bit products summed in 32) against
    NumPy's in int64, on 1, 2 and 3 threads: the same integers whatever the thread count,
    and the extremes (2047 x -128 over k = 5120, large-v3's widest) do not overflow."""
    lib = native.library()
    if not lib.q8_gemm_supported():
        pytest.skip("no AVX2 here")
    rng = np.random.default_rng(m + n + k)
    a = rng.integers(0, 2048, (m, k), dtype=np.int16)
    b = rng.integers(-128, 128, (n, k), dtype=np.int8)
    a[0], b[0] = 2047, -128  # the largest sum there is
    want = a.astype(np.int64) @ b.astype(np.int64).T
    for threads in (1, 2, 3):
        got = np.full((m, n), 7, np.int32)
        assert lib.q8_gemm(m, n, k, a.ctypes.data, b.ctypes.data, got.ctypes.data, threads) == native.OK
        np.testing.assert_array_equal(got, want)
    assert want[0, 0] == -2047 * 128 * k


@pytest.mark.parametrize("m,n,k", [(1, 1, 2), (13, 1003, 384), (100, 51865, 512), (7, 40, 5120)])
def test_the_int8_table_product_over_many_rows_is_numpy_s(m, n, k):
    """``gemm_q8_int16`` (word timing's logits: the rows rounded to int16 as the AVX2 step
    rounds them, integer products panel by panel, any n) against NumPy doing the same
    rounding and integer sums in int64, then the same scaling: on 1, 2 and 3 threads, with
    the largest sum there is and a row of zeros."""
    lib = native.library()
    if lib is None or not lib.rows_q8_int16_supported():
        pytest.skip("the integer products run on AVX2 without AVX-512")
    rng = np.random.default_rng(m + n + k)
    q = rng.integers(-127, 128, (n, k), dtype=np.int8)
    scale, bias = rng.uniform(1e-3, 2e-3, n).astype(np.float32), rng.normal(0, 1, n).astype(np.float32)
    x = rng.normal(0, 1, (m, k)).astype(np.float32)
    q[0], x[0] = -127, -np.abs(x[0]).max()  # the largest sum there is
    if m > 1:
        x[1] = 0
    top = np.float32(min(32767, (2**31 - 1) // (127 * k)))
    step = np.abs(x).max(-1) / top
    step[step == 0] = 1
    rounded = np.rint(x * (np.float32(1) / step)[:, None]).astype(np.int64)
    totals = rounded @ q.astype(np.int64).T
    assert np.abs(totals).max() < 2**31 and totals[0, 0] == int(top) * 127 * k
    want = totals.astype(np.float32) * (step[:, None] * scale[None, :]) + bias
    for threads in (1, 2, 3):
        got = np.full((m, n), 7, np.float32)
        status = lib.gemm_q8_int16(
            m,
            n,
            k,
            x.ctypes.data,
            q.ctypes.data,
            scale.ctypes.data,
            bias.ctypes.data,
            got.ctypes.data,
            threads,
        )
        assert status == native.OK
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.abs(want).max())


def test_the_integer_product_declines_what_it_does_not_take(portable_kernels):
    """``q8_gemm`` takes whole panels of 16 columns, pairs of k, and k up to 5120 (past it
    a sum could leave int32) on AVX2; otherwise, and in the plain C build (other CPUs: the
    encoder's int8 weights are then widened), it says so and writes nothing."""
    lib = native.library()
    if lib is None or not lib.q8_gemm_supported():
        pytest.skip("no AVX2 here")
    a, b = np.ones((2, 5122), np.int16), np.ones((24, 5122), np.int8)
    c = np.zeros((2, 24), np.int32)
    assert lib.q8_gemm(2, 24, 6, a.ctypes.data, b.ctypes.data, c.ctypes.data, 1) == native.UNSUPPORTED
    assert lib.q8_gemm(2, 16, 5, a.ctypes.data, b.ctypes.data, c.ctypes.data, 1) == native.UNSUPPORTED
    assert lib.q8_gemm(2, 16, 5122, a.ctypes.data, b.ctypes.data, c.ctypes.data, 1) == native.UNSUPPORTED
    assert not portable_kernels.q8_gemm_supported()
    assert (
        portable_kernels.q8_gemm(2, 16, 6, a.ctypes.data, b.ctypes.data, c.ctypes.data, 1)
        == native.UNSUPPORTED
    )
    assert not c.any()


def test_the_avx2_int8_encoder_moves_no_further_than_its_int8_weights(model):
    """On AVX2 the int8 encoder's activations get 11 bits (oneDNN's with VNNI, 8): on a real
    window its output lies as close to the float32 blocks' as the same int8 weights with
    float32 activations do (tiny.en: 1.98% against 1.96% on average; with 8 bits, 2.6%)."""
    from subtitler.engine.cpu import blocks as cpu_blocks

    backend = _cpu_backend(model)
    lib = native.library()
    if backend.blocks is None or backend.stem is None or not lib.q8_gemm_supported():
        pytest.skip("the C encoder or our AVX2 product does not run here")
    enc, x = model.encoder, backend.stem(_jfk_window())
    want = np.array(backend.blocks.encode(x.copy()))  # float32 blocks

    def error(gemm):
        blocks = cpu_blocks.Blocks(
            enc.blocks,
            enc.ln_post,
            lib,
            _blas.sgemm_address(),
            gemm,
            kernel_ops.Int8Weights(),
            "encoder.blocks",
        )
        got = np.array(blocks.encode(x.copy()))
        cos = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
        return np.abs(got - want).mean() / np.abs(want).mean(), cos.min()

    ours, widened = error(ctypes.cast(lib.q8_gemm, ctypes.c_void_p).value), error(None)
    assert 0.005 < widened[0] < 0.03  # the int8 weights do move it
    assert ours[0] < 1.05 * widened[0] and ours[1] > 0.999, (ours, widened)


def test_blocks_over_int8_weights_dequantized_are_float32_blocks_over_those_weights(model):
    """Without an integer product (the plain C build; the prompt's blocks always) int8 weights
    are widened product by product for sgemm: the same as float32 blocks over the widened
    weights, to float32 rounding, on a real window."""
    from subtitler.engine.cpu import blocks as cpu_blocks

    backend = _cpu_backend(model)
    if backend.blocks is None or backend.stem is None:
        pytest.skip("the C encoder does not run here")
    enc, lib, sgemm = model.encoder, native.library(), _blas.sgemm_address()
    int8 = kernel_ops.Int8Weights()
    widened = cpu_blocks.Blocks(enc.blocks, enc.ln_post, lib, sgemm, None, int8)
    saved = [(b, b.attn._qkv, b.attn.out.weight, b.mlp1.weight, b.mlp2.weight) for b in enc.blocks]
    try:  # float32 blocks over the same weights, quantized and widened back
        for b, (w, bias), out, w1, w2 in saved:
            back = [
                mx.array(q.astype(np.float32) * sc[:, None]) for q, sc, _ in map(int8.of, (w, out, w1, w2))
            ]
            b.attn._qkv, b.attn.out.weight, b.mlp1.weight, b.mlp2.weight = (back[0], bias), *back[1:]
        reference = cpu_blocks.Blocks(enc.blocks, enc.ln_post, lib, sgemm)
    finally:
        for b, qkv, out, w1, w2 in saved:
            b.attn._qkv, b.attn.out.weight, b.mlp1.weight, b.mlp2.weight = qkv, out, w1, w2
    x = backend.stem(_jfk_window())
    got, want = np.array(widened.encode(x.copy())), np.array(reference.encode(x.copy()))
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()


def test_alignment_pass_by_the_c_kernel_matches_mlx(model):
    """Word timing's pass over a window's tokens by ``cpu_blocks`` (which hands back the
    cross-attention queries) against MLX: the same logits at the text rows and the same
    scores of the alignment heads, in the same order."""
    from subtitler.engine.whisper.backend import MlxBackend

    backend = _cpu_backend(model)
    if backend.prompt_blocks is None:
        pytest.skip("the C decoder prompt does not run here")
    cross = backend.encode(_jfk_window())
    tok = get_tokenizer(False)
    text = tok.encode(" And so my fellow Americans, ask not what your country can do for you")
    tokens = [*tok.sot_sequence, tok.no_timestamps, *text, tok.eot]
    rows = list(range(len(tok.sot_sequence), len(tok.sot_sequence) + len(text)))
    logits, scores = backend.alignment(tokens, cross, rows, model.alignment_heads)
    want_logits, want_scores = MlxBackend(model).alignment(tokens, cross, rows, model.alignment_heads)
    assert logits.shape == want_logits.shape == (len(rows), model.dims.n_vocab)
    assert scores.shape == want_scores.shape == (len(model.alignment_heads), len(tokens), 1500)
    assert np.abs(logits - want_logits).max() < 2e-4 * np.abs(want_logits).max()
    assert np.abs(scores - want_scores).max() < 2e-4 * np.abs(want_scores).max()


def test_float16_table_taken_from_the_file_is_the_weights(model):
    """The output embedding's float16 table comes from the file as read (no conversion
    back and check at load): it holds exactly the model's float32 weights."""
    _cpu_backend(model)
    table = model.decoder.embedding_half
    if table is None:
        pytest.skip("no float16 logits kernel on this CPU")
    assert table.dtype == np.float16 and table.flags.c_contiguous
    assert np.array_equal(table.astype(np.float32), np.array(model.decoder.token_embedding.weight))


def test_median_filter_in_c_is_numpys(kernels):
    """Word timing's median filter (width 7, reflected at the ends), ties included."""
    from subtitler.engine.whisper import timing

    rng = np.random.default_rng(3)
    for shape in [(8, 61, 1500), (2, 3, 4), (1, 2, 9)]:
        x = rng.random(shape, dtype=np.float32)
        x[..., 1:3] = x[..., :1]
        got = timing._median_filter(x, 7)
        expected = np.sort(
            np.lib.stride_tricks.sliding_window_view(
                np.pad(x, [(0, 0), (0, 0), (3, 3)], mode="reflect"), 7, axis=-1
            ),
            axis=-1,
        )[..., 3]
        assert np.array_equal(got, expected)


def test_decoder_prompt_by_the_c_kernel_matches_mlx(model):
    """The decoder over a prompt by ``cpu_blocks`` (causal self-attention, cross-attention
    over a real window): MLX's logits for the chosen rows, and its keys and values."""
    backend = _cpu_backend(model)
    if backend.prompt_blocks is None:
        pytest.skip("the C decoder prompt does not run here")
    cross = backend.encode(_jfk_window())
    tok = get_tokenizer(False)
    tokens = [tok.sot_prev, *tok.encode(" Ask not what your country can do for you,") * 6, *tok.sot_sequence]
    rows = [0, 17, len(tokens) - 1]
    logits, kv = backend.prompt(tokens, cross, rows)
    want, cache, _ = model.decoder(mx.array([tokens]), cross, rows=rows)
    assert logits.shape == want.shape == (1, 3, model.dims.n_vocab)
    assert np.abs(np.array(logits) - np.array(want)).max() < 2e-4
    for (k, v), (wk, wv) in zip(kv, cache):
        assert np.abs(k - np.array(wk[0])).max() < 1e-4 and np.abs(v - np.array(wv[0])).max() < 1e-4


def test_the_int8_prompt_by_integer_products_is_the_widened_one(model):
    """The decoder's prompt over int8 weights by integer products over its rows rounded to
    int16 (``q8i_product``, AVX2: the row kernel up to 24 rows, panels past it) against the
    same weights widened for sgemm: the same next-token distributions (KL 8e-7 measured
    along this prompt) and keys and values within the rows' rounding."""
    from subtitler.engine.cpu import blocks as cpu_blocks
    from subtitler.engine.cpu.backend import CpuBackend

    lib = native.library()
    if lib is None or not lib.blocks_supported() or not lib.rows_q8_int16_supported():
        pytest.skip("the integer products run on AVX2 without AVX-512")
    int8 = CpuBackend.build(model, "int8")
    cross = int8.encode(_jfk_window())
    tok = get_tokenizer(False)
    text = [tok.sot_prev, *tok.encode(" Ask not what your country can do for you,") * 3, *tok.sot_sequence]
    # 1 and 20 rows by the row kernel, 32 and 64 by panels
    for tokens in (list(tok.sot_sequence), text[:20], text, text * 2):
        rows = list(range(len(tokens)))
        out = {}
        for int16_inputs in (False, True):
            int8.prompt_blocks = cpu_blocks.Blocks.build(
                model.decoder.blocks, None, "int8", False, None, "decoder.blocks", int16_inputs
            )
            logits, kv = int8.prompt(tokens, cross, rows)
            out[int16_inputs] = np.array(logits[0], np.float64), kv
        (widened, kv_widened), (ours, kv_ours) = out[False], out[True]
        log_p, log_q = (x - kernel_ops.logsumexp(x) for x in (widened, ours))
        kl = (np.exp(log_p) * (log_p - log_q)).sum(-1)
        assert kl.max() < 1e-5 and (widened.argmax(-1) == ours.argmax(-1)).all(), len(tokens)
        for want, got in zip((a for kv in kv_widened for a in kv), (a for kv in kv_ours for a in kv)):
            assert np.abs(got - want).max() < 3e-3 * np.abs(want).max()


@pytest.mark.parametrize("chunks,threads", [(37, 1), (37, 3), (200, 2)])
def test_stft_by_fft_gives_the_model_s_magnitudes(monkeypatch, chunks, threads):
    """The speech detector's STFT by FFT (16 chunks a pass, any count, split over
    threads) against the model's own products with its windowed DFT basis, over real
    speech, the reflected end of every chunk's row included."""
    from conftest import LS

    from subtitler.engine import silero
    from subtitler.engine.audio import load_audio

    lib = native.library()
    if lib is None:
        pytest.skip("the C kernels were not built")
    audio = np.zeros(silero.CONTEXT + chunks * silero.CHUNK, np.float32)  # the context, then the chunks
    audio[silero.CONTEXT :] = load_audio(str(LS))[: chunks * silero.CHUNK]
    got = np.full((chunks, silero.FRAMES * 129), np.nan, np.float32)
    lib.stft_magnitudes_fft(
        audio.ctypes.data,
        chunks,
        silero.CHUNK,
        silero.CHUNK + silero.CONTEXT,
        silero.FRAMES,
        silero.HOP,
        silero._window().ctypes.data,
        got.ctypes.data,
        threads,
    )
    monkeypatch.setattr(native, "_lib", False)
    want = silero._magnitudes(audio, chunks)
    assert want.max() > 1.0  # speech, not silence
    assert np.abs(got - want).max() <= 2e-6 * want.max()


def test_doctor_says_how_the_int8_encoder_runs(monkeypatch):
    """doctor names the int8 encoder's integer product: oneDNN's with VNNI, ours on AVX2
    alone; where neither runs, the int8 weights widened for float products (not "float32")."""
    from subtitler.engine.cpu import blocks as cpu_blocks
    from subtitler.engine.kernels import dnnl

    lib = native.library()
    if lib is None or not lib.blocks_supported():
        assert cpu_blocks.describe_int8_products() == "the C blocks do not run here"
        return
    monkeypatch.setattr(dnnl, "has_vnni", lambda: False)
    assert cpu_blocks.describe_int8_products() == "int8 products by our AVX2 kernel (11-bit activations)"
    monkeypatch.setattr(
        native, "_lib", type("Lib", (), {"blocks_supported": lambda: 1, "q8_gemm_supported": lambda: 0})
    )
    assert cpu_blocks.describe_int8_products() == "int8 weights widened to float32 products"
    monkeypatch.setattr(native, "_lib", lib)
    if dnnl.address() is not None:
        monkeypatch.setattr(dnnl, "has_vnni", lambda: True)
        assert cpu_blocks.describe_int8_products() == "int8 products by oneDNN (VNNI)"
