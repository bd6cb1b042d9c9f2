"""Cues for dense dialogue: a flash merges into a neighbour, two turns share a cue as
dashed lines, and a cue no neighbour can take is flagged as unavoidable."""

from subtitler.core.checks import check
from subtitler.core.cues import build_cues
from subtitler.core.document import Cue
from subtitler.engine.types import DecodedSegment, DecodedWord


def said(*words):
    ws = [DecodedWord(s, e, t, 0.9) for s, e, t in words]
    return DecodedSegment(ws[0].start, ws[-1].end, "".join(w.word for w in ws), words=ws)


def test_a_flash_between_close_turns_merges_as_a_dialogue_cue():
    """ "Hello?" "Hello." 0.2 s apart with speech right after: each alone would be a
    77-ms flash; together they are one cue of two dashed lines."""
    segs = [
        said((1.0, 1.077, " Hello?")),
        said((1.28, 1.5, " Hello.")),
        said(
            (1.7, 2.0, " I"),
            (2.0, 2.2, " didn't"),
            (2.2, 2.5, " know"),
            (2.5, 2.7, " you"),
            (2.7, 3.0, " were"),
            (3.0, 3.4, " there."),
        ),
        said((3.6, 3.8, " Yeah,"), (3.8, 4.0, " I"), (4.0, 4.6, " was.")),
        said((5.6, 5.9, " Okay.")),
    ]
    cues = build_cues(segs, "default", 20_000)
    texts = [c.text for c in cues]
    assert "- Hello?\n- Hello." in texts or any(t.startswith("- Hello?\n- Hello.") for t in texts), texts
    assert all(c.duration >= 1000 for c in cues), [(c.start, c.end, c.text) for c in cues]
    assert not [f for f in check(cues, "default") if f.kind == "too_short"]


def test_a_short_cue_grows_into_free_time_instead_of_merging():
    segs = [said((1.0, 1.2, " Hi.")), said((4.0, 4.3, " Who"), (4.3, 4.6, " is"), (4.6, 5.0, " it?"))]
    a, b = build_cues(segs, "default", 20_000)
    assert a.text == "Hi." and a.duration >= 1000 and a.start == 1000


def test_a_cue_no_neighbour_can_take_stays_and_is_flagged_unavoidable():
    """Each neighbour is a word held about 7 s: merged, either would pass the 7-s maximum."""
    segs = [said((0.0, 6.9, " Nooooo.")), said((7.0, 7.1, " No.")), said((7.25, 14.2, " Waaait."))]
    cues = build_cues(segs, "default", 20_000)
    short = [c for c in cues if c.text == "No."]
    assert short and short[0].duration < 1000
    findings = [f for f in check(cues, "default") if f.kind == "too_short"]
    assert findings and all(f.unavoidable and "unavoidable" in f.message for f in findings)


def test_too_short_with_room_around_it_is_not_unavoidable():
    cues = [Cue(0, 1500, "First."), Cue(3000, 3300, "Flash."), Cue(6000, 7000, "Last.")]
    (f,) = [f for f in check(cues, "default") if f.kind == "too_short"]
    assert not f.unavoidable and "unavoidable" not in f.message
