"""Cues for dense dialogue: a flash merges into a neighbour, two turns share a cue as
dashed lines, and a cue no neighbour can take is flagged as unavoidable."""

from subtitler.core.checks import check
from subtitler.core.cues import _wraps, build_cues, wrap_lines
from subtitler.core.document import Cue
from subtitler.core.profiles import Profile
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
    """Its reading time counts from the speech (1 s from "Hi."), the lead-in on top."""
    segs = [said((1.0, 1.2, " Hi.")), said((4.0, 4.3, " Who"), (4.3, 4.6, " is"), (4.6, 5.0, " it?"))]
    a, b = build_cues(segs, "default", 20_000)
    assert a.text == "Hi." and a.end >= 2000 and a.start == 880


def test_a_cue_leads_in_a_few_frames_into_free_time_and_no_further():
    """A cue appears 120 ms before its speech, as subtitle timers set it; never before the
    file's start, never past the longest cue."""
    segs = [
        said((0.05, 1.4, " Hello there.")),
        said((4.0, 4.5, " Who"), (4.5, 5.0, " is"), (5.0, 5.6, " it?")),
        said((9.6, 10.0, " Far"), (10.0, 16.5, " awaaay.")),
    ]
    a, b, c = build_cues(segs, "default", 20_000)
    assert a.start == 0  # not before the file's start
    assert b.start == 3880 and b.start - a.end > 83  # a long silence: not chained
    assert c.end == 16_500 and c.start == 9500  # 120 ms would pass the 7-s maximum
    netflix = build_cues(segs, "netflix", 20_000)
    assert [x.start for x in netflix] == [50, 4000, 9600]  # in-times on the speech


def test_speech_under_two_seconds_apart_is_chained():
    """A 1.8-s pause inside a turn keeps a subtitle on screen: it stays on to the next
    cue's lead-in; past 2 s of silence the cues part."""
    segs = [
        said((1.0, 1.5, " Okay,"), (1.5, 2.4, " let's begin.")),
        said((4.2, 4.6, " Right,"), (4.6, 5.4, " my name's Andrew.")),
        said((7.5, 8.0, " And"), (8.0, 9.0, " yours?")),
    ]
    a, b, c = build_cues(segs, "default", 20_000)
    assert b.start == 4080 and a.end == 4080 - 83  # hung on 1.6 s after the speech
    assert c.start - b.end > 500  # 2.1 s of silence: two subtitles with a blank between
    assert c.start == 7380


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


def test_a_flash_merges_into_the_neighbour_nearer_by_speech_not_the_chained_one():
    """The meeting's "Right," 1.8 s after a sentence and 0.8 s before the rest of its own:
    the cue before stays on up to it (chained), yet it joins the words it belongs with."""
    segs = [
        said((1.93, 2.46, " Okay,"), (2.46, 3.83, " well I think we're ready to begin.")),
        said((5.66, 5.84, " Right,")),
        said((6.66, 6.88, " my"), (6.88, 7.14, " name's"), (7.14, 7.38, " Andrew"), (7.38, 7.6, " Good,")),
        said((7.6, 7.84, " we're"), (7.84, 8.24, " here"), (8.24, 9.04, " because of real reaction.")),
    ]
    texts = [c.text for c in build_cues(segs, "default", 20_000)]
    assert texts == [
        "Okay, well I think we're ready to begin.",
        "Right, my name's Andrew Good,",
        "we're here because of real reaction.",
    ], texts


def test_the_last_cue_is_bounded_by_the_media_s_end():
    """A fast last cue that the recording's end stops from growing is unavoidable there;
    with no end known, it could grow, so it is not."""
    cues = [
        Cue(26_100, 28_120, "I'm the expert."),
        Cue(28_203, 30_000, "You're the marketing expert, okay? Okay."),
    ]
    (free,) = [f for f in check(cues, "default") if f.kind == "cps"]
    (bounded,) = [f for f in check(cues, "default", 30_000) if f.kind == "cps"]
    assert not free.unavoidable and bounded.unavoidable and "unavoidable" in bounded.message


def test_the_cue_makers_line_check_agrees_with_wrap_lines():
    """``_wraps`` (asked of every candidate cue) says what wrapping the text says, for
    random texts around the line limits, one and two lines, short and long limits."""
    import random

    rng = random.Random(5)
    words = ["a", "I", "an", "the", "of,", "and", "word", "longer", "sentence.", "x" * 14, "wait—", "  "]
    checked = {True: 0, False: 0}
    for _ in range(4000):
        profile = Profile(
            "t", max_chars_per_line=rng.choice([10, 20, 42, 60, 130]), max_lines=rng.choice([1, 2])
        )
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 30)))
        expected = all(len(x) <= profile.max_chars_per_line for x in wrap_lines(text, profile).split("\n"))
        assert _wraps(text, profile) == expected, (text, profile)
        checked[expected] += 1
    assert min(checked.values()) > 500  # both answers were exercised


def test_a_title_s_period_is_not_a_sentence_end():
    """ "Mr. Quilter ..." with a hesitation after "Mr.": the cue and the line break fall
    after the clause, never between a title and the name it goes with."""
    text = "Quilter is the apostle of the middle classes, and we are glad to welcome his gospel."
    t, words = 1.75, []
    for w in text.split():
        words.append((t, t + 0.25, " " + w))
        t += 0.3
    segs = [said((1.0, 1.4, " Mr."), *words)]
    cues = build_cues(segs, "default", 30_000)
    assert len(cues) == 2, [c.text for c in cues]
    assert cues[0].text.startswith("Mr. Quilter")
    assert not any(line.endswith("Mr.") for c in cues for line in c.text.split("\n")), [c.text for c in cues]
    assert wrap_lines("We met Mr. Smith at the door", Profile("p", 20)) == "We met Mr. Smith\nat the door"
    assert (
        wrap_lines("Bring fruit, e.g. apples or pears", Profile("p", 20))
        == "Bring fruit,\ne.g. apples or pears"
    )


def test_a_segment_without_words_keeps_its_text_and_the_rest_stays_word_timed():
    """Word timing can leave a garbled segment without words. Its text stays, as one
    word over its own time, and the cues around it are still made from words: no
    overlap, nothing under the profile's minimum that a neighbour could take."""
    wordless = DecodedSegment(2.9, 3.2, " azine,", words=[])  # starts inside the words before it
    segs = [
        said((1.0, 1.4, " There"), (1.4, 1.7, " is"), (1.7, 2.0, " this"), (2.0, 3.0, " Gospel,")),
        wordless,
        said((5.0, 5.4, " The"), (5.4, 6.0, " end.")),
    ]
    cues = build_cues(segs, "default", 20_000)
    text = " ".join(c.text for c in cues)
    assert "azine," in text and text.index("Gospel") < text.index("azine") < text.index("end")
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:])), [(c.start, c.end) for c in cues]
    assert not [f for f in check(cues, "default", 20_000) if f.kind in ("overlap", "too_short")]


def test_lines_do_not_end_on_a_pronoun_or_auxiliary_and_a_sentence_end_is_a_good_break():
    """As subtitlers break lines: never "what you're | doing", and a sentence that ends on
    a preposition ("for.") still ends its line."""
    p = Profile("p")
    assert wrap_lines("She said what you're doing Donald is amazing.", p) == (
        "She said what you're doing\nDonald is amazing."
    )
    assert wrap_lines("Tell me what it's for. We will wait here", Profile("p", 24)) == (
        "Tell me what it's for.\nWe will wait here"
    )


def test_a_flash_between_two_full_cues_shares_their_words_out_again():
    """Three words said quickly between two cues too full to take them ("und dann gehen
    unsere", 0.8 s): the flash and a neighbour are split again so both last the minimum,
    and no cue is left under it."""

    def spoken(text, start, end):
        ws = text.split()
        step = (end - start) / len(ws)
        return said(*[(start + k * step, start + (k + 1) * step - 0.02, " " + w) for k, w in enumerate(ws)])

    segs = [
        spoken("Und wir haben heute alle diese Frage stehen zum Beispiel im Wohnungsbau", 23.3, 27.5),
        spoken("und dann gehen unsere", 27.62, 28.45),
        spoken("Bauteile nicht mehr von innen nach Hause und von außen nach hinten,", 28.6, 33.6),
    ]
    cues = build_cues(segs, "default", 40_000)
    assert [w.text for c in cues for w in c.words] == [w.word for s in segs for w in s.words]
    assert min(c.duration for c in cues) >= 1000, [(c.start, c.end, c.text) for c in cues]
    assert not check(cues, "default", 40_000), [(c.start, c.end, c.text) for c in cues]
