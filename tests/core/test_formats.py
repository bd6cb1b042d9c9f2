"""Subtitle files from the wild: WebVTT with headers, legacy encodings, Advanced
SubStation, strict SRT, and writers that never produce an invalid file."""

import subprocess
import sys
from pathlib import Path

import pytest
import srt
import webvtt
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from subtitler.core import formats
from subtitler.core.document import Cue, Document
from subtitler.core.formats import markup
from subtitler.errors import EncodingUnclear, MissingTimeLine, SubtitleFileError

SUBS = Path(__file__).resolve().parent.parent / "data" / "subtitles"
ROOT = Path(__file__).resolve().parents[2]


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "subtitler", *args], capture_output=True, text=True, cwd=ROOT
    )


# ----------------------------------------------------------------------------- WebVTT


def test_youtube_vtt_converts_to_srt_with_every_cue_and_back_to_vtt_intact(tmp_path):
    src = SUBS / "youtube.vtt"
    r = cli("convert", str(src), str(tmp_path / "out.srt"))
    assert r.returncode == 0, r.stderr
    subs = list(srt.parse((tmp_path / "out.srt").read_text()))
    assert [s.content for s in subs] == [
        "Welcome back to the channel.",
        "Today we look at three ways\nto <i>cook</i> rice & beans.",
        "First, rinse the rice.",
        "Second: soak it -- not for long.",
    ]
    assert [s.start.total_seconds() for s in subs] == [0.5, 3.0, 5.5, 7.2]
    # VTT -> VTT keeps the header, styles, ids, settings and tags.
    r = cli("convert", str(src), str(tmp_path / "out.vtt"))
    assert r.returncode == 0, r.stderr
    back = webvtt.read(str(tmp_path / "out.vtt"))
    orig = webvtt.read(str(src))
    assert back.metadata == ["Kind: captions", "Language: en"]
    assert [s.text for s in back.styles] == [s.text for s in orig.styles]
    assert [(c.identifier, str(c.settings), c.raw_text, c.start, c.end) for c in back.captions] == [
        (c.identifier, str(c.settings), c.raw_text, c.start, c.end) for c in orig.captions
    ]
    # and it is stable from there on
    once = (tmp_path / "out.vtt").read_text()
    assert formats.dumps(formats.loads(once, "vtt"), "vtt") == once


def test_vtt_without_header_is_refused_clearly():
    with pytest.raises(SubtitleFileError, match="must start with WEBVTT"):
        formats.loads("00:00:01.000 --> 00:00:02.000\nhi\n", "vtt")


# ----------------------------------------------------------------------------- SRT


def test_srt_block_without_time_line_is_an_error_naming_its_line(tmp_path):
    r = cli("convert", str(SUBS / "missing_time.srt"), str(tmp_path / "out.vtt"))
    assert r.returncode == 1
    assert "line 5" in r.stderr and "no valid time line" in r.stderr
    assert not (tmp_path / "out.vtt").exists()
    with pytest.raises(MissingTimeLine) as e:
        formats.load(SUBS / "missing_time.srt")
    assert e.value.line == 5
    loaded = formats.read_file(SUBS / "missing_time.srt", skip_bad=True)
    assert [s.text for s in loaded.document] == ["Caption text #1", "Caption text #3"]  # nothing glued
    assert loaded.skipped == [5]


# ----------------------------------------------------------------------------- encodings

TEXTS = {
    "gb2312": [
        "我们今天去北京看朋友。",
        "这是一个测试字幕文件，请不要删除。",
        "你好吗？我很好，谢谢。",
        "明天下午三点在学校门口见面。",
        "他说这部电影非常好看。",
        "请把窗户关上，外面太冷了。",
    ],
    "cp1251": [
        "Привет, как дела? Мы идём домой.",
        "Это проверка субтитров.",
        "Завтра будет солнечно и тепло.",
        "Я не знаю, что сказать.",
        "Пожалуйста, закройте дверь.",
        "Мы встретимся в три часа.",
    ],
    "shift_jis": [
        "今日は東京へ行きます。",
        "これは字幕のテストです。",
        "明日の天気はどうですか？",
        "ありがとうございました。",
        "駅まで歩いて十分です。",
        "この映画はとても面白い。",
    ],
    "cp1252": [
        "Café crème à la française, s'il vous plaît.",
        "Déjà vu, naïve façade.",
        "Où est la bibliothèque ? Je ne sais pas.",
        "Il était une fois un garçon très curieux.",
        "Ça va très bien, merci beaucoup !",
        "Nous sommes allés à la plage en été.",
    ],
}


def _srt_of(lines):
    return "".join(
        f"{i + 1}\n00:00:{i:02d},000 --> 00:00:{i:02d},900\n{line}\n\n" for i, line in enumerate(lines * 3)
    )


@pytest.mark.parametrize("encoding", list(TEXTS))
def test_legacy_encodings_read_as_the_right_text(tmp_path, encoding):
    path = tmp_path / f"{encoding}.srt"
    text = _srt_of(TEXTS[encoding])
    path.write_bytes(text.encode(encoding))  # no BOM
    doc = formats.load(path)
    assert [s.text for s in doc] == TEXTS[encoding] * 3
    r = cli("convert", str(path), str(tmp_path / "out.srt"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.srt").read_text(encoding="utf-8") == text  # written as UTF-8


def test_byte_soup_is_refused_and_encoding_flag_overrides(tmp_path):
    soup = tmp_path / "soup.srt"
    soup.write_bytes(b"1\n00:00:01,000 --> 00:00:02,000\n" + bytes(range(0x80, 0x100)) * 4 + b"\n")
    with pytest.raises(EncodingUnclear):
        formats.load(soup)
    r = cli("convert", str(soup), str(tmp_path / "out.srt"))
    assert r.returncode == 1 and "--encoding" in r.stderr
    r = cli("convert", str(soup), str(tmp_path / "out.srt"), "--encoding", "latin-1")
    assert r.returncode == 0, r.stderr
    r = cli("check", str(soup), "--encoding", "nonsense-8")
    assert r.returncode == 2 and "Unknown text encoding" in r.stderr


def test_bom_is_honoured_and_written_on_request(tmp_path):
    path = tmp_path / "bom.srt"
    path.write_bytes(b"\xef\xbb\xbf" + _srt_of(["Grüße"]).encode())
    assert formats.load(path)[0].text == "Grüße"
    r = cli("convert", str(path), str(tmp_path / "out.srt"), "--bom")
    assert r.returncode == 0 and (tmp_path / "out.srt").read_bytes().startswith(b"\xef\xbb\xbf")


# ----------------------------------------------------------------------------- ASS


def test_aegisub_ass_reads_every_dialogue_and_round_trips(tmp_path):
    doc = formats.load(SUBS / "aegisub.ass")
    assert [s.text for s in doc] == [
        "Where did you put the <i>map</i>?",
        "I left it on the table,\nnext to the lamp.",
        "{\\an8\\pos(960,80)}NORTH GATE",
        "<b>Again?</b> That's the third time.",
        "{\\fad(200,200)}Sorry!",
    ]
    assert doc[2].extra["ass"] == {"style": "Sign", "layer": 1}
    once = formats.dumps(doc, "ass")
    for section in (
        "[Aegisub Project Garbage]",
        "Style: Sign,Georgia,48",
        "[Fonts]",
        "fontname: subtitler_test_0.ttf",
        "[Graphics]",
        "filename: logo.png",
        "Comment: 0,0:00:00.00",
        "{\\an8\\pos(960,80)}NORTH GATE",
        "{\\i1}map{\\i0}",
        "table,\\Nnext",
    ):
        assert section in once
    assert formats.dumps(formats.loads(once, "ass"), "ass") == once  # byte-for-byte stable
    # ASS -> SRT: line breaks, italics kept, other overrides dropped
    r = cli("convert", str(SUBS / "aegisub.ass"), str(tmp_path / "out.srt"))
    assert r.returncode == 0, r.stderr
    subs = list(srt.parse((tmp_path / "out.srt").read_text()))
    assert [s.content for s in subs][:3] == [
        "Where did you put the <i>map</i>?",
        "I left it on the table,\nnext to the lamp.",
        "NORTH GATE",
    ]


def test_srt_to_ass_to_srt_keeps_times_and_text(tmp_path):
    segs = [
        Cue(1234, 3456, "Hello <i>there</i>,\nfriend."),
        Cue(4000, 5010, "Second & last {not an override}"),
    ]
    formats.save(Document(segs), tmp_path / "a.srt")
    assert cli("convert", str(tmp_path / "a.srt"), str(tmp_path / "a.ass")).returncode == 0
    assert cli("convert", str(tmp_path / "a.ass"), str(tmp_path / "b.srt")).returncode == 0
    back = formats.load(tmp_path / "b.srt")
    assert [s.text for s in back] == [s.text for s in segs]
    assert [(s.start, s.end) for s in back] == [(1230, 3460), (4000, 5010)]  # centiseconds
    script = (tmp_path / "a.ass").read_text()
    assert "PlayResY: 1080" in script and "Style: Default,Arial,54" in script


def test_new_ass_is_sized_for_the_video():
    doc = Document([Cue(0, 1000, "Hi")])
    doc.video_size = (1280, 720)
    script = formats.dumps(doc, "ass")
    assert "PlayResX: 1280" in script and "PlayResY: 720" in script and "Style: Default,Arial,36" in script


def test_list_formats():
    r = cli("convert", "--list-formats")
    assert r.returncode == 0
    for ext in (".srt", ".vtt", ".ass", ".ssa", ".txt", ".json"):
        assert ext in r.stdout


# ----------------------------------------------------------------------------- writers never break a file

cue_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), min_size=1, max_size=60
) | st.sampled_from(
    [
        "a\n\nb",
        "x --> y",
        "<i>it</i> & <b>b</b>",
        "1\n00:00:01,000 --> 00:00:02,000",
        "{\\an8}top",
        "back\\Nslash",
        "NOTE this",
        "WEBVTT",
        "  ",
        "a\r\nb",
    ]
)
times = st.tuples(st.integers(-5000, 10**7), st.integers(-5000, 10**7))


def _expected(fmt: str, text: str) -> str:
    """What the writer of ``fmt`` promises to keep of a cue's text, as its reader gives it back."""
    if fmt == "srt":
        return markup.to_srt(text)
    if fmt == "vtt":
        return markup.from_vtt(markup.to_vtt(text))
    return markup.from_ass(markup.to_ass(text))


@pytest.mark.parametrize("fmt", ["srt", "vtt", "ass"])
@settings(max_examples=150, deadline=None)
@given(cues=st.lists(st.tuples(cue_text, times), min_size=1, max_size=6))
def test_every_writer_output_reads_back(fmt, cues):
    segs = [Cue(a, b, text) for text, (a, b) in cues]
    for s in segs:
        assume(markup.plain(_expected(fmt, s.text)).strip())
    written = formats.dumps(Document(segs), fmt)
    back = formats.loads(written, fmt).cues
    assert len(back) == len(segs)
    for s, b in zip(segs, back):
        start = max(0, s.start)
        end = max(s.end, start + 1)
        ass = fmt == "ass"  # centiseconds
        assert abs(b.start - start) <= (5 if ass else 0)
        assert b.end > b.start
        assert abs(b.end - end) <= (15 if ass else 0)  # rounded, and at least a centisecond long
        assert b.text == _expected(fmt, s.text)
        assert "\n\n" not in b.text
