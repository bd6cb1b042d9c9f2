"""The editing core: segments, edits with undo, checks and subtitle files."""

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subtitler.core import formats
from subtitler.core.checks import check
from subtitler.core.document import Cue, Document, Word
from subtitler.core.edits import (
    Delete,
    EditText,
    Insert,
    Merge,
    ReplaceText,
    SetTimes,
    Shift,
    SnapToNeighbours,
    Split,
    insert_after,
)
from subtitler.errors import EditError, EncodingUnclear, SubtitleFileError

text_st = (
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\r\x85\u2028\u2029"),
        min_size=1,
        max_size=40,
    )
    .map(lambda s: " ".join(s.split()))
    .filter(
        lambda s: s and "-->" not in s
    )  # "-->" would read as a time line: writers drop a dash (markup.py)
)


@st.composite
def documents(draw, max_size=8):
    n = draw(st.integers(0, max_size))
    t, segs = 0, []
    for _ in range(n):
        t += draw(st.integers(0, 5000))
        d = draw(st.integers(1, 8000))
        lines = draw(st.lists(text_st, min_size=1, max_size=2))
        segs.append(Cue(t, t + d, "\n".join(lines)))
        t += d
    return Document(segs)


def same(a, b):
    return [(s.start, s.end, s.text, s.words) for s in a] == [(s.start, s.end, s.text, s.words) for s in b]


@settings(max_examples=60, deadline=None)
@given(documents())
def test_srt_round_trip(doc):
    back = formats.loads(formats.dumps(doc, "srt"), "srt")
    assert [(s.start, s.end, s.text) for s in back.cues] == [(s.start, s.end, s.text) for s in doc.cues]


@settings(max_examples=60, deadline=None)
@given(documents())
def test_vtt_round_trip(doc):
    text = formats.dumps(doc, "vtt")
    assert text.startswith("WEBVTT\n")
    back = formats.loads(text, "vtt")
    assert [(s.start, s.end, s.text) for s in back.cues] == [(s.start, s.end, s.text) for s in doc.cues]


@st.composite
def edit_sequences(draw):
    doc = draw(documents(max_size=6))
    ops = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["text", "times", "split", "merge", "insert", "delete", "shift", "snap"]),
                st.integers(0, 10),
                st.integers(-3000, 3000),
                text_st,
            ),
            max_size=8,
        )
    )
    return doc, ops


def make_edit(doc, op, i, n, text):
    if op == "insert":
        return insert_after(doc, (i % len(doc)) if len(doc) else None)
    if not len(doc):
        raise EditError("empty")
    i %= len(doc)
    s = doc[i]
    return {
        "text": lambda: EditText(doc, i, text),
        "times": lambda: SetTimes(doc, i, start=s.start + n, end=s.end + n // 2),
        "split": lambda: Split(doc, i, max(1, len(s.text) // 2)),
        "merge": lambda: Merge(doc, i),
        "delete": lambda: Delete(doc, i),
        "shift": lambda: Shift(doc, n, first=i),
        "snap": lambda: SnapToNeighbours(doc, i),
    }[op]()


@settings(max_examples=80, deadline=None)
@given(edit_sequences())
def test_do_then_undo_restores_exactly(case):
    doc, ops = case
    original = doc.snapshot()
    done = []
    for op in ops:
        try:
            e = make_edit(doc, *op)
        except EditError:
            continue
        e.do()
        done.append(e)
    for e in reversed(done):
        e.undo()
    assert same(doc.cues, original)


@settings(max_examples=60, deadline=None)
@given(text_st.filter(lambda t: len(t) >= 2), st.data())
def test_split_then_merge_restores_the_segment(text, data):
    doc = Document([Cue(1000, 5000, text)])
    pos = data.draw(st.integers(1, len(text) - 1))
    try:
        Split(doc, 0, pos).do()
    except EditError:
        return  # nothing to split on one side
    Merge(doc, 0).do()
    s = doc[0]
    assert (s.start, s.end) == (1000, 5000)
    assert s.text.split() == text.split()


def test_split_uses_word_timings():
    words = [Word(0, 400, " Hello"), Word(500, 900, " there"), Word(1500, 1900, " friend")]
    doc = Document([Cue(0, 1900, "Hello there friend", words)])
    Split(doc, 0, len("Hello there ")).do()
    assert [(s.start, s.end, s.text) for s in doc] == [(0, 1500, "Hello there"), (1500, 1900, "friend")]


def test_invalid_edits_are_refused_with_a_reason():
    doc = Document([Cue(0, 1000, "a"), Cue(2000, 3000, "b")], media_duration=5000)
    with pytest.raises(EditError, match="before the end"):
        SetTimes(doc, 0, start=1000)
    with pytest.raises(EditError, match="negative"):
        Shift(doc, -500)
    with pytest.raises(EditError, match="past the end of the media"):
        SetTimes(doc, 1, end=6000)
    with pytest.raises(EditError, match="no following"):
        Merge(doc, 1)
    assert [(s.start, s.end) for s in doc] == [(0, 1000), (2000, 3000)]


def test_shift_from_here_on_and_replace_text():
    doc = Document([Cue(0, 1000, "one"), Cue(2000, 3000, "two"), Cue(4000, 5000, "two too")])
    Shift(doc, 250, first=1).do()
    assert [(s.start, s.end) for s in doc] == [(0, 1000), (2250, 3250), (4250, 5250)]
    r = ReplaceText(doc, "two", "2")
    r.do()
    assert r.count == 2 and [s.text for s in doc] == ["one", "2", "2 too"]
    r.undo()
    assert [s.text for s in doc] == ["one", "two", "two too"]


def test_document_notifies_listeners():
    doc = Document([Cue(0, 1000, "a")])
    seen = []
    doc.subscribe(lambda *a: seen.append((*a, len(doc))))  # and how many segments it had then
    e = Insert(doc, 1, Cue(1500, 2000, "b"))
    e.do()
    e.undo()
    assert seen == [
        ("about_to_replace", 1, 0, 1, 1),
        ("replaced", 1, 0, 1, 2),
        ("about_to_replace", 1, 1, 0, 2),
        ("replaced", 1, 1, 0, 1),
    ]
    seen.clear()
    doc.set_cues([Cue(0, 10, "x"), Cue(20, 30, "y")])
    assert seen == [("about_to_reset", 0, 1, 2, 1), ("reset", 0, 1, 2, 2)]


def test_findings_follow_changes_like_a_full_check():
    """Incremental findings equal a fresh check after every kind of edit."""
    from subtitler.core.checks import Findings

    doc = Document([Cue(i * 1000, i * 1000 + 900, f"cue {i}") for i in range(30)])
    findings = Findings(doc.cues, "default")
    doc.subscribe(
        lambda kind, first, old, new: kind == "replaced" and findings.replaced(doc.cues, first, old, new)
    )

    def same():
        want = {}
        for f in check(doc.cues, "default"):
            want.setdefault(f.index, []).append(f.kind)
        assert {i: [f.kind for f in fs] for i, fs in enumerate(findings.by_row) if fs} == want

    edits = [
        SetTimes(doc, 4, end=5500),
        Split(doc, 10, 2),
        Merge(doc, 3),
        Delete(doc, 7, 3),
        Insert(doc, 0, Cue(0, 100, "x")),
        Shift(doc, 50, 5),
        EditText(doc, 2, "a much longer text " * 5),
    ]
    for e in edits:
        e.do()
        same()
    for e in reversed(edits):
        e.undo()
        same()


# ------------------------------------------------------------------ checks


NETFLIX_BAD = """1
00:00:01,000 --> 00:00:01,500
Too short

2
00:00:01,520 --> 00:00:09,000
Too long on screen

3
00:00:08,900 --> 00:00:10,000
Overlaps the one before it at all

4
00:00:10,020 --> 00:00:11,000
Gap too small before this and far too fast to read

5
00:00:20,000 --> 00:00:26,000
This line is much longer than forty-two characters
and there are
three lines
"""


def test_check_finds_each_netflix_violation(tmp_path):
    p = tmp_path / "bad.srt"
    p.write_text(NETFLIX_BAD)
    kinds = {(f.index, f.kind) for f in check(formats.load(p).cues, "netflix")}
    assert {
        (0, "too_short"),
        (1, "too_long"),
        (1, "overlap"),
        (2, "gap"),
        (3, "cps"),
        (4, "line_length"),
        (4, "line_count"),
    } <= kinds
    from subtitler.cli import main

    assert main(["check", str(p), "--profile", "netflix"]) == 1
    good = tmp_path / "good.srt"
    good.write_text("1\n00:00:01,000 --> 00:00:03,000\nFine.\n")
    assert main(["check", str(good)]) == 0


def test_check_cli_output_format(tmp_path, capsys):
    from subtitler.cli import main

    p = tmp_path / "bad.srt"
    p.write_text(NETFLIX_BAD)
    main(["check", str(p), "--profile", "netflix"])
    lines = capsys.readouterr().out.splitlines()
    assert "#1 00:00:01.000-00:00:01.500: shown for 500 ms (minimum 833 ms)" in lines
    assert "#2 00:00:01.520-00:00:09.000: overlaps the next subtitle by 100 ms" in lines


def test_convert_between_formats(tmp_path):
    from subtitler.cli import main

    src = tmp_path / "a.srt"
    src.write_text(
        "1\n00:00:01,000 --> 00:00:02,500\nFish & <chips>\n\n2\n00:01:00,000 --> 00:01:02,000\nBye\n"
    )
    assert main(["convert", str(src), str(tmp_path / "a.vtt")]) == 0
    vtt = (tmp_path / "a.vtt").read_text()
    assert "00:00:01.000 --> 00:00:02.500\nFish &amp; &lt;chips&gt;" in vtt
    assert main(["convert", str(tmp_path / "a.vtt"), str(tmp_path / "b.srt")]) == 0
    assert (tmp_path / "b.srt").read_text() == src.read_text() + "\n" or formats.load(
        tmp_path / "b.srt"
    ).cues == formats.load(src).cues
    assert main(["convert", str(src), str(tmp_path / "a.txt")]) == 0
    assert (tmp_path / "a.txt").read_text() == "Fish & <chips>\nBye\n"


# ------------------------------------------------------------------ bad files


def test_reads_bom_crlf_and_cp1252(tmp_path):
    p = tmp_path / "x.srt"
    p.write_bytes(b"\xef\xbb\xbf1\r\n00:00:01,000 --> 00:00:02,000\r\nCaf\xc3\xa9\r\n")
    assert formats.load(p).cues[0].text == "Café"
    p.write_bytes("1\r\n00:00:01,000 --> 00:00:02,000\r\nCafé – naïve\r\n".encode("cp1252"))
    with pytest.raises(EncodingUnclear) as e:  # three words could be cp1250 as well: we ask, not guess
        formats.load(p)
    assert "cp1252" in e.value.candidates and "cp1252" in str(e.value)
    assert formats.load(p, encoding="cp1252").cues[0].text == "Café – naïve"
    v = tmp_path / "x.vtt"
    v.write_bytes(
        b"\xef\xbb\xbfWEBVTT\r\n\r\ncue-1\r\n00:01.000 --> 00:02.000 align:start\r\n<i>Hi</i> &amp; bye\r\n"
    )
    assert [(s.start, s.end, s.text) for s in formats.load(v).cues] == [(1000, 2000, "<i>Hi</i> & bye")]


@pytest.mark.parametrize(
    "name,content,line",
    [
        ("a.srt", "1\n00:00:01,000 --> 00:00:02,000\nok\n\nbroken\n00:00:03 -> 00:00:04\n", 5),
        ("b.srt", "just some words\n", 1),
        ("d.vtt", "1\n00:00:01,000 --> 00:00:02,000\nsrt in disguise\n", 1),
        ("e.json", '{"segments": [ {"start": 1,\n "end": }', 2),
    ],
)
def test_malformed_files_name_the_line(tmp_path, name, content, line):
    p = tmp_path / name
    p.write_text(content)
    try:
        doc = formats.load(p)
    except SubtitleFileError as e:
        assert "line" in str(e) or line is None
        if line is not None:
            assert e.line == line and f"line {line}" in str(e)
    else:
        pytest.fail(f"{name} was read: {doc.cues}")


def test_vtt_block_that_is_no_cue_is_skipped_as_the_spec_says(tmp_path):
    p = tmp_path / "c.vtt"
    p.write_text("WEBVTT\n\n00:01.000 --> 00:02.000\nok\n\nnot a timing line\nbody\n")
    assert [s.text for s in formats.load(p)] == ["ok"]


def test_failed_import_loses_nothing_loaded():
    doc = Document([Cue(0, 1000, "keep me")])
    with pytest.raises(SubtitleFileError):
        doc.set_cues(formats.loads("nonsense", "srt").cues)
    assert doc[0].text == "keep me"


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    out = tmp_path / "subs.srt"
    out.write_text("old content")
    doc = Document([Cue(0, 1000, "new")])

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(SubtitleFileError, match="No space left"):
        formats.save(doc, out)
    assert out.read_text() == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["subs.srt"]  # no temp file left behind


def test_a_saved_file_has_the_mode_any_program_would_give_it(tmp_path):
    """A new file gets what the umask gives (not a temporary file's 0600: readable by its
    owner alone), and a replaced one keeps its own mode."""
    old = os.umask(0o022)
    try:
        new = tmp_path / "new.srt"
        formats.save(Document([Cue(0, 1000, "new")]), new)
        assert stat.S_IMODE(new.stat().st_mode) == 0o644
        kept = tmp_path / "kept.srt"
        kept.write_text("old")
        kept.chmod(0o640)
        formats.save(Document([Cue(0, 1000, "new")]), kept)
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and "new" in kept.read_text()
    finally:
        os.umask(old)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_atomic_write_read_only_folder(tmp_path):
    out = tmp_path / "subs.srt"
    out.write_text("old content")
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(SubtitleFileError):
            formats.save(Document([Cue(0, 1000, "new")]), out)
        assert out.read_text() == "old content"
    finally:
        tmp_path.chmod(stat.S_IRWXU)


def test_autosave_recovery(tmp_path):
    import time

    from subtitler.core import project

    media = str(tmp_path / "movie.mp4")
    doc = Document([Cue(0, 1000, "saved")], media_path=media)
    project.save_project(doc)
    assert project.recovery_for(media) is None
    time.sleep(0.02)
    doc.set_cues([Cue(0, 1000, "edited, not saved")])
    project.autosave(doc)
    auto = project.recovery_for(media)
    assert auto is not None
    assert project.load_project(auto)[0].text == "edited, not saved"
    project.save_project(doc)
    assert project.recovery_for(media) is None
