"""Judging what Whisper decoded: noise taken for speech, and repetition loops.

Whisper, the small models above all, can fall into a loop: one phrase over and over
inside a segment, or the same segment window after window ("I'm a girl." five times
on a film scene). These are pure functions over decoded text and the speech mask; the
transcription loop retries a window that loops, as the temperature fallback does, and
drops what still repeats (``transcribe.decode_window``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from difflib import SequenceMatcher

import numpy as np

from subtitler.engine.vad import speech_fraction

LONE_WORD_PROBABILITY = 0.5  # below this a lone word is a guess
LONE_WORD_SPEECH = 0.5  # and with less of its time over speech than this, a guess at noise
PHRASE_REPEATS = 3  # a phrase said this many times in a row inside one segment is a loop
SEGMENT_REPEATS = 3  # and so are this many near-identical segments in a row
NEAR_IDENTICAL = 0.85  # the similarity (difflib's ratio of normalised text) of near-identical segments


def words_of(text: str) -> list[str]:
    """Lower-case words without punctuation: what repetition is judged on."""
    return re.findall(r"\w+(?:'\w+)?", text.lower())


def is_lone_guess(segment, mask: np.ndarray) -> bool:
    """A segment of one low-probability word that lies mostly over non-speech: what
    Whisper writes over music or a cough ("2", "you"). Probability alone is no test (a
    tenth of real words score under 0.32), so it takes all three: one word, under
    ``LONE_WORD_PROBABILITY``, and less than half of it over speech."""
    words = [w for w in segment.words if w.word.strip()]
    if len(words) != 1:
        return False
    w = words[0]
    return w.probability < LONE_WORD_PROBABILITY and speech_fraction(mask, w.start, w.end) < LONE_WORD_SPEECH


def is_repetition_loop(text: str, min_repeats: int = 4) -> bool:
    """True when the text is mostly one short phrase said over and over."""
    words = words_of(text)
    if len(words) < min_repeats * 2:
        return False
    for n in range(1, 6):
        grams = [" ".join(words[i : i + n]) for i in range(0, len(words) - n + 1, n)]
        run = best = 1
        for a, b in zip(grams, grams[1:]):
            run = run + 1 if a == b else 1
            best = max(best, run)
        if best >= min_repeats and best * n >= 0.6 * len(words):
            return True
    return False


def repeated_phrase(text: str, times: int = PHRASE_REPEATS, max_words: int = 6) -> str | None:
    """The first phrase of 1 to ``max_words`` words said ``times`` times in a row in
    ``text`` ("ha ha ha", "I'm a girl I'm a girl I'm a girl"), or None."""
    words = words_of(text)
    for n in range(1, max_words + 1):
        for i in range(len(words) - n * times + 1):
            gram = words[i : i + n]
            if all(words[i + k * n : i + (k + 1) * n] == gram for k in range(1, times)):
                return " ".join(gram)
    return None


def near_identical(a: str, b: str) -> bool:
    """Two segments' texts are the same but for punctuation, case or a letter or two."""
    x, y = " ".join(words_of(a)), " ".join(words_of(b))
    if not x or not y:
        return False
    return x == y or SequenceMatcher(None, x, y, autojunk=False).ratio() >= NEAR_IDENTICAL


def looping(texts: Sequence[str], before: Sequence[str] = ()) -> list[int]:
    """Indices into ``texts`` (a window's segments, in order) that are a loop: a phrase
    said ``PHRASE_REPEATS`` times inside one, or a segment that makes the
    ``SEGMENT_REPEATS``-th near-identical one in a row, counting the segments
    ``before`` it (the last ones kept from earlier windows). Two in a row is left be:
    people do say "Hello? Hello?"."""
    out = []
    history = list(before)[-(SEGMENT_REPEATS - 1) :]
    for i, text in enumerate(texts):
        run = 1
        for prev in reversed(history):
            if not near_identical(prev, text):
                break
            run += 1
        if repeated_phrase(text) is not None or run >= SEGMENT_REPEATS:
            out.append(i)
        else:
            history = (history + [text])[-(SEGMENT_REPEATS - 1) :]
    return out


def is_guess(segment, mask: np.ndarray, min_speech: float) -> bool:
    """Whether a decoded segment is noise rather than speech: too little of it over
    speech, a repetition loop, or a lone low-probability word over non-speech."""
    return (
        speech_fraction(mask, segment.start, segment.end) < min_speech
        or is_repetition_loop(segment.text)
        or is_lone_guess(segment, mask)
    )
