"""The one pipeline and the layers around it: import arrows, no work at import,
seeded sampling, no junk cues, models freed."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import srt
from conftest import JFK, JFK_TEXT, normalize

from subtitler.core.cues import build_cues, has_letter
from subtitler.engine.types import DecodedSegment, DecodedWord

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "subtitler"


def _imports(path: Path) -> set[str]:
    """Every module a file imports, absolute, at any depth (function bodies too)."""
    tree = ast.parse(path.read_text())
    parts = path.relative_to(ROOT).with_suffix("").parts
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return found


def _modules(under: str) -> dict[str, set[str]]:
    return {str(p.relative_to(ROOT)): _imports(p) for p in (ROOT / under).rglob("*.py")}


def _hits(imports: set[str], forbidden: tuple[str, ...]) -> set[str]:
    return {m for m in imports if any(m == f or m.startswith(f + ".") for f in forbidden)}


def test_arrows_point_down():
    """The engine knows no subtitles, the core no model, nothing under subtitler/ knows Qt or
    ui/, and ui/ reaches the engine only through the pipeline."""
    bad = {}
    for path, imports in _modules("subtitler/engine").items():
        if hits := _hits(
            imports, ("subtitler.core", "subtitler.pipeline", "subtitler.cli", "subtitler.batch")
        ):
            bad[path] = hits
    for path, imports in _modules("subtitler/core").items():
        if hits := _hits(imports, ("subtitler.engine", "subtitler.pipeline", "subtitler.cli", "mlx")):
            bad[path] = hits
    for path, imports in _modules("subtitler").items():
        if hits := _hits(imports, ("ui", "PySide6", "PyQt5", "PyQt6")):
            bad[path] = hits
    for path, imports in _modules("ui").items():  # ui adapts the pipeline and the core, never the engine
        if hits := _hits(imports, ("subtitler.engine", "mlx")):
            bad[path] = hits
    # Inside the engine: kernels <- whisper <- cpu (the backend over the kernels) <- backends.
    for path, imports in _modules("subtitler/engine/kernels").items():
        if hits := _hits(imports, ("subtitler.engine.whisper", "subtitler.engine.cpu")):
            bad[path] = hits
    for path, imports in _modules("subtitler/engine/whisper").items():
        if hits := _hits(imports, ("subtitler.engine.cpu", "subtitler.engine.backends")):
            bad[path] = hits
    model = _imports(PACKAGE / "engine" / "whisper" / "model.py")  # the network: pure MLX
    if hits := {
        m
        for m in model
        if m.split(".")[0] not in ("mlx", "numpy", "math", "collections", "dataclasses", "__future__")
    }:
        bad["subtitler/engine/whisper/model.py"] = hits
    assert not bad, bad
    assert len(_modules("subtitler/engine")) > 15 and len(_modules("subtitler/core")) > 8  # the walk saw them


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph`` (module -> modules it imports): its strongly
    connected parts of more than one module."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while not part or part[-1] != v:
                part.append(stack.pop())
                on.discard(part[-1])
            if len(part) > 1:
                found.append(sorted(part))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle():
    """No circle among the modules of subtitler/ and ui/, counting imports inside functions."""
    modules = {}
    for under in ("subtitler", "ui"):
        for path, imports in _modules(under).items():
            name = path.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
            modules[name] = imports
    graph = {m: {i for i in imports if i in modules and i != m} for m, imports in modules.items()}
    assert _cycles(graph) == []
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # it would see one


def test_the_walk_would_see_a_wrong_arrow(tmp_path):
    src = tmp_path / "subtitler" / "engine" / "x.py"
    src.parent.mkdir(parents=True)
    src.write_text("def f():\n    from ..core import cues\n    import PySide6.QtCore\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        imports = _imports(src)
    finally:
        ROOT = saved
    assert _hits(imports, ("subtitler.core",)) and _hits(imports, ("PySide6",))


def test_importing_does_no_work():
    """No MLX, no BLAS and no malloc tuning on import: only prepare() does that."""
    code = (
        "import sys, subtitler, subtitler.core, subtitler.pipeline, subtitler.cli\n"
        "import subtitler.core.formats, subtitler.core.cues, subtitler.core.checks, subtitler.core.project\n"
        "import subtitler.engine.whisper, subtitler.engine.whisper.languages, subtitler.engine.kernels.blas as b\n"
        "import subtitler.engine.runtime, subtitler.engine.types, subtitler.engine.audio, subtitler.engine.vad\n"
        "subtitler.pipeline.Settings().compute()  # the window and the CLI resolve it before anything loads\n"
        "assert 'mlx.core' not in sys.modules, 'mlx imported'\n"
        "assert b.loaded() is None and not b._tried, 'a BLAS was loaded'\n"
        "from subtitler.engine import runtime; runtime.prepare()\n"
        "import mlx.core\n"
        "print('ok', b._tried)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["ok", "True"], out.stderr


def _decoded(words):
    ws = [DecodedWord(s, e, t, p) for s, e, t, p in words]
    return DecodedSegment(ws[0].start, ws[-1].end, "".join(w.word for w in ws), words=ws)


def test_no_cue_without_a_letter():
    segs = [
        _decoded([(0.0, 0.4, " ...", 0.2)]),
        _decoded([(2.0, 2.5, " Hello", 0.9), (2.5, 3.0, " there.", 0.9)]),
        _decoded([(5.0, 5.3, " 2", 0.3)]),
        _decoded([(8.0, 9.5, " ♪", 0.5)]),
        _decoded([(12.0, 12.5, " Привет,", 0.9), (12.5, 13.0, " мир", 0.9)]),
    ]
    cues = build_cues(segs, "default", 20_000)
    assert [c.text for c in cues] == ["Hello there.", "Привет, мир"]
    assert not has_letter("... ♪ 2 — !") and has_letter("日本") and has_letter("x")
    from subtitler.core.cues import segments_as_cues

    assert [c.text for c in segments_as_cues(segs)] == ["Hello there.", "Привет, мир"]


def test_cues_a_short_pause_apart_are_chained():
    """A pause under two seconds between two cues' speech closes up to the profile's
    minimum gap (the subtitle stays through the pause); a longer one stays; no cue grows
    past the profile's longest."""
    segs = [
        _decoded([(1.0, 1.5, " We", 0.9), (1.5, 2.0, " went", 0.9), (2.0, 2.6, " home.", 0.9)]),
        _decoded([(2.9, 3.4, " It", 0.9), (3.4, 4.0, " rained.", 0.9)]),
        _decoded([(6.0, 6.5, " Then", 0.9), (6.5, 7.2, " it", 0.9), (7.2, 8.0, " stopped.", 0.9)]),
    ]
    a, b, c = build_cues(segs, "default", 20_000)
    assert a.end == b.start - 83  # 300 ms apart: chained
    assert b.end < c.start - 500  # 2 s apart: left apart (the grace after b, the lead-in before c)
    slow = [_decoded([(0.0, 6.9, " Wait", 0.9)]), _decoded([(7.2, 7.8, " now", 0.9)])]
    first, second = build_cues(slow, "default", 20_000)
    assert first.end <= 7000 and second.start == first.end + 83  # within the profile's 7 s, chained


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "subtitler", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=ROOT,
    )


@pytest.mark.slow
def test_sampling_is_seeded_so_a_file_gives_the_same_subtitles(tmp_path):
    """Sampling (here forced by a fixed temperature, as the fallback does) draws from
    the seed: two runs give identical files; another seed may differ."""
    outs = []
    for i, seed in enumerate(["0", "0", "7"]):
        out = tmp_path / f"run{i}.srt"
        r = _cli(
            "transcribe", str(JFK), "-o", str(out), "--temperature", "1.0", "--seed", seed, "--segments", "-q"
        )
        assert r.returncode == 0, r.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert len(srt.parse(outs[0].decode()).__next__().content) > 0
    assert outs[2] != outs[0]  # seed 7 draws other tokens (the draws come from the seed alone)


@pytest.mark.slow
def test_a_clip_that_falls_back_to_sampling_decodes_the_same_twice(model):
    """ls_test played backwards is no language: decoding fails its thresholds at every
    temperature and falls back to sampling; the draws come from the seed, so two runs
    give the same segments, and another seed may not."""
    from conftest import LS

    from subtitler.engine.audio import load_audio
    from subtitler.engine.transcribe import transcribe
    from subtitler.engine.types import TranscribeOptions

    backwards = load_audio(str(LS))[::-1].copy()
    runs = [
        [
            (s.start, s.end, s.text, s.temperature)
            for s in transcribe(model, backwards, TranscribeOptions(word_timestamps=True, seed=seed))
        ]
        for seed in (0, 0)
    ]
    assert runs[0] and any(t > 0 for *_, t in runs[0])  # it did fall back
    assert runs[0] == runs[1]


@pytest.mark.slow
def test_pipeline_defaults_are_tight_cues(model):
    from subtitler import pipeline

    doc = pipeline.transcribe_media(JFK, model=model)
    assert normalize(" ".join(s.text for s in doc)) == JFK_TEXT
    assert doc.media_duration == 11_000 and doc.language == "en" and doc.model == "tiny.en"
    assert all(s.words for s in doc) and 250 <= doc[0].words[0].start <= 500
    assert doc[0].start == doc[0].words[0].start - 120  # the default profile's lead-in
    raw = pipeline.transcribe_media(JFK, pipeline.Settings(segments=True), model=model)
    assert raw[0].start == 0 and len(raw) < len(doc)


@pytest.mark.slow
def test_the_audio_is_read_while_the_model_loads(model, media_dir, monkeypatch):
    """With no model given, the file's audio and its speech detection run on a thread
    while the model loads, and give the subtitles a loaded model gives. A file that is
    not media still fails with its own message."""
    import threading
    import time

    from subtitler import pipeline
    from subtitler.errors import SubtitlerError

    spans = {}

    def timed(name, fn):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spans[name] = (
                    start,
                    time.perf_counter(),
                    threading.current_thread() is threading.main_thread(),
                )

        return run

    monkeypatch.setattr(pipeline, "read_audio", timed("read", pipeline.read_audio))
    monkeypatch.setattr(pipeline, "load_model", timed("load", pipeline.load_model))
    doc = pipeline.transcribe_media(media_dir / "jfk.mp4", pipeline.Settings(model="tiny.en"))
    (read_start, read_end, read_on_main), (load_start, load_end, load_on_main) = spans["read"], spans["load"]
    assert not read_on_main and load_on_main
    assert read_start < load_end and load_start < read_end  # at the same time
    words = lambda d: [(w.text, w.start, w.end) for s in d for w in s.words]
    assert words(doc) and words(doc) == words(pipeline.transcribe_media(media_dir / "jfk.mp4", model=model))
    with pytest.raises(SubtitlerError, match="is not a media file"):
        pipeline.transcribe_media(media_dir / "notes.mp4", pipeline.Settings(model="tiny.en"))


@pytest.mark.slow
def test_dropping_a_model_frees_it():
    """Load, transcribe and drop models in turn: MLX's memory goes back to nothing
    and the process's RSS settles instead of growing with each load."""
    code = (
        "import gc, sys\n"
        "from subtitler import pipeline\n"
        "from subtitler.engine import runtime; runtime.prepare()\n"
        "import mlx.core as mx\n"
        "def rss():\n"
        "    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
        "for i in range(5):\n"
        "    m = pipeline.load_model('tiny.en')\n"
        "    pipeline.transcribe_media(sys.argv[1], model=m)\n"
        "    del m; gc.collect(); mx.clear_cache()\n"
        "    print(round(rss()), mx.get_active_memory())\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(JFK)], capture_output=True, text=True, cwd=ROOT)
    rows = [list(map(int, line.split())) for line in out.stdout.splitlines()]
    assert len(rows) == 5, out.stderr
    assert all(active < 1 << 20 for _, active in rows)  # every array of every model is gone
    rss = [r for r, _ in rows]
    assert rss[-1] - rss[1] < 40, rss  # tiny.en is 150 MB in float32: one kept copy would show


def test_auto_runs_float32_where_the_c_kernels_have_no_blas(monkeypatch):
    """With no BLAS loaded for the C kernels (``SUBTITLER_BLAS=0``, or MLX imported before
    ``runtime.prepare``) ``auto`` is float32 and the default model loads and transcribes;
    it used to pick int8 and fail to load ("The int8 kernels could not take tiny.en")."""
    from subtitler import pipeline
    from subtitler.engine import backends
    from subtitler.engine.kernels import blas

    monkeypatch.setattr(blas, "sgemm_address", lambda: None)
    assert backends.resolve_compute_type("auto") == "float32"
    assert backends.describe_compute_type("auto").startswith("auto = float32: the C kernels do not run here")
    m = pipeline.load_model("tiny.en")
    assert not getattr(m, "float32_released", False)
    doc = pipeline.transcribe_media(str(JFK), pipeline.Settings(), model=m)
    assert normalize(" ".join(c.text for c in doc)) == JFK_TEXT


@pytest.mark.slow
def test_a_model_loaded_for_int8_holds_its_weights_once():
    """Loaded for int8 on the C path, a model lets its float32 products and token table go
    (the kernels hold them in int8, the table in float16; the encoder's first block's stay
    float32 and are not quantized), still gives jfk's words, and
    says so clearly when asked for what it no longer holds: float32, or more beams than
    the C step takes."""
    from subtitler import pipeline
    from subtitler.engine.backends import backend_for
    from subtitler.engine.cpu.backend import CpuBackend

    m = pipeline.load_model("tiny.en", compute_type="int8")
    if not isinstance(backend_for(m, "int8"), CpuBackend) or not getattr(m, "float32_released", False):
        pytest.skip("the C kernels or the int8 path do not run here")
    assert m.encoder.blocks[1].mlp1.weight.size == 0 and m.decoder.token_embedding.weight.size == 0
    assert m.decoder.blocks[0].mlp1.weight.size == 0
    # the encoder's first block stays float32 (Whisper.FLOAT32_BLOCKS), and only in float32
    assert m.encoder.blocks[0].mlp1.weight.size == 384 * 1536
    assert "encoder.blocks.0.mlp1" not in m.int8_weights.preset
    doc = pipeline.transcribe_media(str(JFK), pipeline.Settings(compute_type="int8"), model=m)
    assert normalize(" ".join(c.text for c in doc)) == JFK_TEXT
    import mlx.core as mx

    assert mx.get_cache_memory() == 0  # no MLX buffer cache beside the heap's freed blocks
    from subtitler.errors import ModelError

    with pytest.raises(ModelError, match="load it again for float32"):
        pipeline.transcribe_media(str(JFK), pipeline.Settings(compute_type="float32"), model=m)
    with pytest.raises(ModelError, match="beam size up to 8"):
        pipeline.transcribe_media(str(JFK), pipeline.Settings(compute_type="int8", beam_size=10), model=m)


def test_speech_found_while_the_audio_is_read_is_the_file_s():
    """``read_audio`` feeds the speech detector ffmpeg's blocks as they arrive: the same
    speech mask as detecting it over the samples once they are all read."""
    import numpy as np
    from conftest import LS

    from subtitler import pipeline
    from subtitler.engine import audio, vad

    read = pipeline.read_audio(str(LS))
    want = vad.speech_mask(audio.load_audio(str(LS)))
    assert want.any() and not want.all()
    assert np.array_equal(read.speech, want)
