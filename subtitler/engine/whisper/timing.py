"""Word-level timestamps: cross-attention of the alignment heads, then dynamic time
warping between text tokens and audio positions (as in openai/whisper).

Only the alignment heads' attention is computed, the tokens' probabilities come from
the logits by one log-sum-exp on the host, the median filter is a min/max network,
and the DTW runs in C where the kernels were built (in NumPy, by anti-diagonals,
elsewhere), with the same word times."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from subtitler.engine.audio import TOKENS_PER_SECOND
from subtitler.engine.kernels import native
from subtitler.engine.kernels import ops as kernel_ops
from subtitler.engine.types import DecodedWord
from subtitler.engine.whisper.backend import MlxBackend

PREPEND_PUNCTUATION = "\"'“¿([{-"
APPEND_PUNCTUATION = "\"'.。,，!！?？:：”)]}、"


@dataclass
class WordTiming:
    word: str
    tokens: list[int]
    start: float
    end: float
    probability: float


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost monotonic path through ``cost`` (N, M); returns (rows, cols)."""
    lib = native.library()
    if lib is None:
        return dtw_numpy(cost)
    c = np.ascontiguousarray(cost, np.float32)
    n, m = c.shape
    rows, cols = np.empty(n + m, np.int64), np.empty(n + m, np.int64)
    length = lib.dtw_path(c.ctypes.data, n, m, rows.ctypes.data, cols.ctypes.data)
    native.check(min(length, 0), "the word alignment")
    return rows[:length], cols[:length]


def dtw_numpy(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``dtw`` without the C kernels: the recurrence is filled one anti-diagonal at a
    time, so the work is vectorised."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf, dtype=np.float64)
    acc[0, 0] = 0.0
    trace = np.full((n + 1, m + 1), -1, dtype=np.int8)
    for d in range(2, n + m + 1):  # i + j == d, with 1 <= i <= n, 1 <= j <= m
        i = np.arange(max(1, d - m), min(n, d - 1) + 1)
        j = d - i
        c = np.stack([acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]])
        k = np.argmin(c, axis=0)
        acc[i, j] = cost[i - 1, j - 1] + c[k, np.arange(len(i))]
        trace[i, j] = k
    trace[0, :] = 2
    trace[:, 0] = 1
    i, j = n, m
    rows, cols = [], []
    while i > 0 or j > 0:
        rows.append(i - 1)
        cols.append(j - 1)
        t = trace[i, j]
        if t == 0:
            i, j = i - 1, j - 1
        elif t == 1:
            i -= 1
        else:
            j -= 1
    path = np.array([rows[::-1], cols[::-1]])
    keep = (path[0] >= 0) & (path[1] >= 0)
    return path[0][keep], path[1][keep]


def _median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """Median filter along the last axis with reflect padding (odd ``width``).

    The window's values are sorted by a network of element-wise minimums and
    maximums over shifted views, then the middle one is taken: for width 7 over a
    window's alignment (8 x 150 x 1500) about 10x faster than ``np.median``."""
    if width <= 1 or x.shape[-1] <= width // 2:
        return x
    lib = native.library()
    if lib is not None and width == 7 and x.shape[-1] >= 4:  # in C
        x = np.ascontiguousarray(x, np.float32)
        out = np.empty_like(x)
        lib.median7_rows(x.ctypes.data, x.size // x.shape[-1], x.shape[-1], out.ctypes.data)
        return out
    pad = width // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    n = x.shape[-1]
    vals = [padded[..., k : k + n] for k in range(width)]
    for i in range(width):  # odd-even transposition sort: width rounds
        for j in range(i % 2, width - 1, 2):
            vals[j], vals[j + 1] = np.minimum(vals[j], vals[j + 1]), np.maximum(vals[j], vals[j + 1])
    return vals[pad]


def find_alignment(
    model, tokenizer, text_tokens: list[int], cross_kv, num_frames: int, medfilt_width: int = 7, backend=None
) -> list[WordTiming]:
    """Each word's time in the window, from the alignment heads' attention (DTW).
    ``backend``: where the model runs (``subtitler.engine.backends``); MLX when not given."""
    if not text_tokens:
        return []
    prefix = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
    rows = list(range(len(prefix) - 1, len(prefix) - 1 + len(text_tokens)))  # the rows that predict the text
    lg, scores = (backend or MlxBackend(model)).alignment(
        prefix + text_tokens + [tokenizer.eot], cross_kv, rows, model.alignment_heads
    )
    w = scores[:, :, : num_frames // 2]
    w = np.exp(w - w.max(axis=-1, keepdims=True))
    w /= w.sum(axis=-1, keepdims=True)
    lg = lg[:, : tokenizer.eot]
    picked = lg[np.arange(len(text_tokens)), text_tokens]
    token_probs = np.exp(picked - kernel_ops.logsumexp(lg)[:, 0])
    mean, std = w.mean(axis=-2, keepdims=True), w.std(axis=-2, keepdims=True)
    w = _median_filter((w - mean) / np.maximum(std, 1e-9), medfilt_width)
    matrix = w.mean(axis=0)[len(prefix) - 1 : -1]
    text_idx, time_idx = dtw(-matrix)

    words, word_tokens = tokenizer.split_to_word_tokens(text_tokens + [tokenizer.eot])
    if len(word_tokens) <= 1:
        return []
    bounds = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
    jump_times = time_idx[jumps] / TOKENS_PER_SECOND
    starts, ends = jump_times[bounds[:-1]], jump_times[bounds[1:]]
    probs_per_word = [float(np.mean(token_probs[i:j])) for i, j in zip(bounds[:-1], bounds[1:])]
    return [
        WordTiming(w, t, float(s), float(e), p)
        for w, t, s, e, p in zip(words, word_tokens, starts, ends, probs_per_word)
    ]


def merge_punctuations(alignment: list[WordTiming]) -> None:
    """Attach leading quotes/brackets to the next word and trailing marks to the previous."""
    i = len(alignment) - 2
    j = len(alignment) - 1
    while i >= 0:
        prev, following = alignment[i], alignment[j]
        if prev.word.startswith(" ") and prev.word.strip() in PREPEND_PUNCTUATION:
            following.word = prev.word + following.word
            following.tokens = prev.tokens + following.tokens
            prev.word, prev.tokens = "", []
        else:
            j = i
        i -= 1
    i, j = 0, 1
    while j < len(alignment):
        prev, following = alignment[i], alignment[j]
        if not prev.word.endswith(" ") and following.word in APPEND_PUNCTUATION:
            prev.word = prev.word + following.word
            prev.tokens = prev.tokens + following.tokens
            following.word, following.tokens = "", []
        else:
            i = j
        j += 1


def words_per_segment(
    alignment: list[WordTiming], token_counts: list[int], offset: float
) -> list[Optional[list[DecodedWord]]]:
    """The aligned words of each segment, by the segments' text-token counts. A word can
    span two segments (one ends on "and", the next opens on "azine" with no space): it
    goes to the first, and the next segment's count starts with its tokens taken, so
    every later segment still gets its own words. None for a segment whose every token
    is inside the word before it."""
    out, k, taken = [], 0, 0
    for count in token_counts:
        if taken >= count:  # all its tokens are inside the word before: it has no words of its own
            out.append(None)
            taken -= count
            continue
        words = []
        while k < len(alignment) and taken < count:
            t = alignment[k]
            if t.word:
                words.append(DecodedWord(offset + t.start, offset + t.end, t.word, round(t.probability, 4)))
            taken += len(t.tokens)
            k += 1
        out.append(words)
        taken -= count  # the tokens of the next segment already taken
    return out


def add_word_timestamps(
    model, tokenizer, segments, cross_kv, offset: float, num_frames: int, backend=None
) -> None:
    """Fill ``segment.words`` for the segments of one window and clamp them to their words."""

    per_segment = [[t for t in s.tokens if t < tokenizer.eot] for s in segments]
    alignment = find_alignment(
        model, tokenizer, [t for s in per_segment for t in s], cross_kv, num_frames, backend=backend
    )
    if not alignment:
        return
    durations = np.array([w.end - w.start for w in alignment])
    nonzero = durations[durations.nonzero()]
    median = min(0.7, float(np.median(nonzero))) if len(nonzero) else 0.0
    max_duration = median * 2
    if len(nonzero):  # a word at a sentence end can absorb the pause after it
        sentence_end = set(".。!！?？")
        for k in range(1, len(alignment)):
            if alignment[k].end - alignment[k].start > max_duration:
                if alignment[k].word.strip() in sentence_end:
                    alignment[k].end = alignment[k].start + max_duration
                elif alignment[k - 1].word.strip() in sentence_end:
                    alignment[k].start = alignment[k].end - max_duration
    merge_punctuations(alignment)
    for seg, words in zip(segments, words_per_segment(alignment, [len(t) for t in per_segment], offset)):
        if words is None:  # its text is in the last word of the segment before
            seg.text, words = "", []
        if words:
            # A first or last word far longer than usual is mostly silence: trim it.
            if words[0].end - words[0].start > max_duration > 0:
                words[0].start = max(words[0].start, words[0].end - max_duration)
            if words[-1].end - words[-1].start > max_duration > 0:
                words[-1].end = min(words[-1].end, words[-1].start + max_duration)
            for w in words:
                w.start, w.end = round(w.start, 3), round(w.end, 3)
            seg.start, seg.end = words[0].start, words[-1].end
        seg.words = words
