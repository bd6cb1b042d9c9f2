"""The loop guard and the transcription loop's pure steps: decode with fallback (which
retries a window that loops) and the split at timestamp tokens."""

from types import SimpleNamespace

import numpy as np
import pytest

from subtitler.engine import guards
from subtitler.engine.transcribe import decode_with_fallback, needs_fallback, split_by_timestamps
from subtitler.engine.types import TranscribeOptions


def test_a_phrase_three_times_in_a_row_is_a_loop():
    assert guards.repeated_phrase("I'm a girl. I'm a girl. I'm a girl.") == "i'm a girl"
    assert guards.repeated_phrase("Oh, she can. Oh, she can, oh she can!") == "oh she can"
    assert guards.repeated_phrase("Ha ha ha.") == "ha"
    assert guards.repeated_phrase("Hello? Hello? Is anybody there?") is None  # twice is speech
    assert guards.repeated_phrase("ask not what your country can do for you, ask what you can do") is None


def test_near_identical_segments_differ_only_in_punctuation_case_or_a_letter():
    assert guards.near_identical("I'm a girl.", "i'm a girl")
    assert guards.near_identical("Oh, she can.", "Oh she can!")
    assert guards.near_identical("You're the marketing expert.", "You're a marketing expert.")
    assert not guards.near_identical("Hello?", "Hello, how are you?")
    assert not guards.near_identical("...", "...")  # no words: never a loop


def test_a_third_identical_segment_in_a_row_loops_across_windows_and_two_do_not():
    assert guards.looping(["Hello?", "Hello."]) == []  # two hellos were said
    assert guards.looping(["I'm a girl.", "I'm a girl.", "I'm a girl.", "Fine."]) == [2]
    # The window before ended on two of them: this window's first is the third.
    assert guards.looping(["I'm a girl.", "How are you?"], before=["No.", "I'm a girl.", "I'm a girl."]) == [
        0
    ]
    # A loop inside one segment, whatever came before.
    assert guards.looping(["Fine.", "Oh, she can. Oh, she can. Oh, she can."]) == [1]
    # A dropped repeat does not count towards the next run.
    assert guards.looping(["Yes.", "Yes.", "Yes.", "Yes.", "No."]) == [2, 3]


def result(tokens=(), avg_logprob=-0.2, compression_ratio=1.5, no_speech_prob=0.0, temperature=0.0):
    return SimpleNamespace(
        tokens=list(tokens),
        avg_logprob=avg_logprob,
        compression_ratio=compression_ratio,
        no_speech_prob=no_speech_prob,
        temperature=temperature,
    )


def test_decode_with_fallback_retries_a_loop_without_the_prompt_and_keeps_the_first_that_passes():
    calls = []
    outcomes = {
        0.0: (result(temperature=0.0), 2),
        0.2: (result(temperature=0.2), 0),
        0.4: (result(temperature=0.4), 0),
    }

    def decode(t, with_prompt):
        calls.append((t, with_prompt))
        return outcomes[t][0]

    chosen = decode_with_fallback(
        decode, (0.0, 0.2, 0.4), TranscribeOptions(), lambda r: outcomes[r.temperature][1]
    )
    assert chosen.temperature == 0.2
    assert calls == [(0.0, True), (0.2, False)]  # the retry drops the previous text a loop feeds on


def test_decode_with_fallback_keeps_the_decode_with_the_fewest_loops_when_all_loop():
    loops = {0.0: 3, 0.2: 1, 0.4: 2}
    chosen = decode_with_fallback(
        lambda t, p: result(temperature=t),
        (0.0, 0.2, 0.4),
        TranscribeOptions(),
        lambda r: loops[r.temperature],
    )
    assert chosen.temperature == 0.2


def test_decode_with_fallback_falls_back_on_whisper_checks_as_before():
    rs = [
        result(compression_ratio=3.0, temperature=0.0),
        result(avg_logprob=-1.5, temperature=0.2),
        result(temperature=0.4),
    ]
    chosen = decode_with_fallback(
        lambda t, p: rs[int(t * 5)], (0.0, 0.2, 0.4), TranscribeOptions(), lambda r: 0
    )
    assert chosen.temperature == 0.4
    silent = result(avg_logprob=-1.5, no_speech_prob=0.9)
    assert not needs_fallback(silent, TranscribeOptions())  # silence is not retried


@pytest.mark.parametrize(
    "tokens, pieces, advance",
    [
        # two segments, the window ends on a pair of timestamps: seek to the last one
        ([100, 1, 2, 150, 150, 3, 4, 250, 250], [(0.0, 1.0), (1.0, 3.0)], 150),
        # the window ends on a single timestamp: the whole window is consumed
        ([100, 1, 2, 150, 150, 3, 4, 250], [(0.0, 1.0), (1.0, 3.0)], None),
        # no pair: one segment up to the last timestamp
        ([100, 1, 2, 3], [(0.0, 30.0)], None),
        ([100, 1, 2, 3, 180], [(0.0, 1.6)], None),
    ],
)
def test_split_by_timestamps(tokens, pieces, advance):
    got, adv = split_by_timestamps(tokens, 100, 10.0, 30.0, 0.02)
    assert [(round(p.start - 10.0, 3), round(p.end - 10.0, 3)) for p in got] == pieces
    assert adv == advance
    assert [t for p in got for t in p.tokens] == tokens[: sum(len(p.tokens) for p in got)]


REAL = __import__("pathlib").Path(__file__).resolve().parents[3] / "shared" / "realspeech"


@pytest.mark.slow
@pytest.mark.skipif(not (REAL / "three_speakers_en.wav").exists(), reason="../shared/realspeech is not here")
def test_a_clip_that_loops_is_retried_and_what_still_repeats_is_dropped(model):
    """A real voice saying "And so it begins" eight times, 0.9 s apart: tiny.en writes
    the phrase three and four times inside a segment. The guard retries the window and
    drops what still repeats; no segment then holds a phrase three times, and no three
    segments in a row are alike."""
    import numpy as np

    from subtitler.engine.audio import load_audio
    from subtitler.engine.transcribe import transcribe

    voice = load_audio(str(REAL / "three_speakers_en.wav"))
    phrase, gap = voice[int(1.6 * 16000) : int(3.4 * 16000)], np.zeros(int(0.9 * 16000), np.float32)
    clip = np.concatenate([gap] + [np.concatenate([phrase, gap]) for _ in range(8)])

    options = dict(word_timestamps=True, compute_type="float32")  # the loop as recorded
    unguarded = [s.text for s in transcribe(model, clip, TranscribeOptions(**options, vad_guards=False))]
    assert any(guards.repeated_phrase(t) for t in unguarded), unguarded  # it loops without the guard

    guarded = [s.text for s in transcribe(model, clip, TranscribeOptions(**options))]
    assert guarded, "the speech itself is kept"
    assert not any(guards.repeated_phrase(t) for t in guarded), guarded
    assert guards.looping(guarded) == [], guarded


def test_confidence_over_reads_only_the_tokens_of_pieces_in_the_spans():
    from subtitler.engine.transcribe import Piece, confidence_over

    pieces = [Piece(0.0, 2.0, [100, 1, 2, 200]), Piece(2.0, 4.0, [200, 3, 4, 300])]
    r = result(tokens=[100, 1, 2, 200, 200, 3, 4, 300], avg_logprob=-0.5)
    r.token_logprobs = [0.0, -0.1, -0.3, 0.0, 0.0, -1.0, -2.0, 0.0]
    assert confidence_over(r, pieces, [(2.5, 3.0)], 100) == pytest.approx(
        -1.5
    )  # the second piece's text tokens
    assert confidence_over(r, pieces, [(0.5, 3.0)], 100) == pytest.approx(-0.85)
    assert confidence_over(r, pieces, [(9.0, 9.5)], 100) == -0.5  # no piece there: the window's average
    r.token_logprobs = None  # beam search keeps none
    assert confidence_over(r, pieces, [(2.5, 3.0)], 100) == -0.5


def test_a_plain_decode_that_skips_a_sure_sentence_dropped_speech():
    """A quiet first line raised: the raised decode holds a sentence the plain one skips.
    Per token the plain decode is surer; it still left speech out."""
    from subtitler.engine.transcribe import dropped_speech

    later = list(range(1, 51))  # both decodes' text of the louder speech
    raised = result(tokens=[1000, *range(60, 86), *later, 1100])
    raised.token_logprobs = [0.0] + [-0.4] * 26 + [-0.2] * 50 + [0.0]
    plain = result(tokens=[1000, *later, 1100])
    plain.token_logprobs = [0.0] + [-0.2] * 50 + [0.0]
    assert dropped_speech(raised, plain, 1000)
    assert not dropped_speech(plain, raised, 1000)  # fewer tokens: nothing more to keep
    unsure = result(tokens=raised.tokens)  # the same count, added tokens Whisper is unsure of
    unsure.token_logprobs = [0.0] + [-2.5] * 26 + [-0.2] * 50 + [0.0]
    assert not dropped_speech(unsure, plain, 1000)
    word_swap = result(tokens=[1000, 7, 8, 9, *later[3:], 1100])  # a few tokens differ: no dropped line
    word_swap.token_logprobs = [0.0] * len(word_swap.tokens)
    assert not dropped_speech(word_swap, plain, 1000)
    beam = result(tokens=raised.tokens)  # beam search keeps no per-token figures: the count decides
    beam.token_logprobs = None
    assert dropped_speech(beam, plain, 1000)


def test_a_tail_window_after_an_unfinished_segment_with_detected_speech_is_not_silence():
    """Whisper's no-speech verdict is set aside only at the file's tail (under half a
    window of audio), where the window before stopped at a segment it had begun, and with
    half a second of detected speech in it."""
    from subtitler.engine.transcribe import N_FRAMES, speech_in_tail

    speech = np.zeros(4000, bool)
    speech[3100:3160] = True  # 0.6 s of speech 1 s into a 2.45-s tail at frame 3000
    assert speech_in_tail(speech, 3000, 245, continued=True)
    assert not speech_in_tail(speech, 3000, 245, continued=False)  # the window before ended whole
    assert not speech_in_tail(speech, 3000, N_FRAMES // 2, continued=True)  # half a window of audio
    assert not speech_in_tail(None, 3000, 245, continued=True)  # no speech detection
    speech[3140:3160] = False  # 0.4 s: too little to outrank Whisper
    assert not speech_in_tail(speech, 3000, 245, continued=True)
