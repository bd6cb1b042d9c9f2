"""Long-form transcription: 30-second windows that seek by the last timestamp token.

``transcribe`` gives a ``Transcription``: its ``DecodedSegment`` s as they are decoded,
so a window or a CLI can show them at once, and what was learnt of the audio
(``info``). Progress is reported in seconds of audio done, and a
cancel callback is polled between windows: what was decoded before it stays.

Each window is a short series of pure steps, tested on their own: decode with the
temperature fallback (``decode_with_fallback``, which also retries a window that
loops), split the tokens at their timestamps (``split_by_timestamps``), time the
words, and guard against noise and loops (``guards``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import partial
from typing import Optional

import numpy as np

from subtitler.engine import audio as audio_mod
from subtitler.engine.audio import FRAMES_PER_SECOND, HOP_LENGTH, N_FRAMES, SAMPLE_RATE, TIME_PRECISION
from subtitler.engine.types import DecodedSegment, Progress, TranscribeOptions, TranscriptInfo
from subtitler.errors import Cancelled, ModelError

# The engine is imported lazily so ``subtitler`` stays importable without MLX.

log = logging.getLogger(__name__)

# A window opening on non-speech starts 0.4 s before the speech instead: the lead-in
# faster-whisper's VAD keeps (speech_pad_ms). On benchmarks/real.py's clips with a
# reference, word errors 69 (skipping only more than 1 s, to 0.2 s before) -> 52;
# never skipping: 79.
LEAD_FRAMES = 40
RAISED_MARGIN = (
    0.0  # a raised window's decode is kept only when it is this much surer (avg log-prob) than the plain one
)


def _temperatures(t) -> tuple[float, ...]:
    return tuple(t) if isinstance(t, (list, tuple)) else (float(t),)


def uses_speech(options: TranscribeOptions) -> bool:
    """Whether a transcription with ``options`` reads the speech mask."""
    return options.word_timestamps or options.vad_guards


def detect_speech(
    samples: np.ndarray, options: TranscribeOptions, probabilities: Optional[np.ndarray] = None
) -> Optional[np.ndarray]:
    """The speech mask (per 10-ms frame) that ``options`` use, or None when they use none.
    ``probabilities``: Silero's for the samples, found as they were read (``silero.SpeechStream``)."""
    from subtitler.engine.vad import speech_mask

    return speech_mask(samples, probabilities=probabilities) if uses_speech(options) else None


def needs_fallback(result, options: TranscribeOptions) -> bool:
    """Whether a window's decode failed Whisper's checks (too repetitive to compress,
    too unsure) and is worth another try at a higher temperature; silence is not."""
    failed = (
        options.compression_ratio_threshold is not None
        and result.compression_ratio > options.compression_ratio_threshold
    ) or (options.logprob_threshold is not None and result.avg_logprob < options.logprob_threshold)
    silent = (
        options.no_speech_threshold is not None
        and result.no_speech_prob > options.no_speech_threshold
        and options.logprob_threshold is not None
        and result.avg_logprob < options.logprob_threshold
    )
    return failed and not silent


MULTILINGUAL = "a multilingual model (base, small, or tiny without .en)"  # what to choose over an .en one


def unsure_throughout(logprobs: Sequence[float], options: TranscribeOptions) -> bool:
    """Whether the kept segments' mean log-probability is under Whisper's threshold for a
    failed decode: an English-only model reading other speech (measured on
    ../shared/realspeech/ with tiny.en: English files -0.2 to -0.8, eight other
    languages -1.2 to -4.1)."""
    return (
        bool(logprobs)
        and options.logprob_threshold is not None
        and float(np.mean(logprobs)) < options.logprob_threshold
    )


def is_silence(result, options: TranscribeOptions) -> bool:
    """Whether the window holds no speech by Whisper's own no-speech probability."""
    return (
        options.no_speech_threshold is not None
        and result.no_speech_prob > options.no_speech_threshold
        and (options.logprob_threshold is None or result.avg_logprob < options.logprob_threshold)
    )


TAIL_SPEECH_FRAMES = 50  # 0.5 s of detected speech: with Whisper's word that speech follows, enough


def speech_in_tail(speech: Optional[np.ndarray], seek: int, size: int, continued: bool) -> bool:
    """Whether a window at the file's tail holds speech that Whisper's no-speech verdict
    should not drop: the last window before it stopped at a segment it had begun
    (``continued``), the window is mostly padding (under half of it audio), and the
    speech detector finds at least ``TAIL_SPEECH_FRAMES`` in it. Whisper's no-speech
    probability rises with the padding, and the file's last words were lost."""
    return (
        continued
        and speech is not None
        and size < N_FRAMES // 2
        and int(speech[seek : seek + size].sum()) >= TAIL_SPEECH_FRAMES
    )


@dataclass
class Piece:
    """A span of a window's tokens between timestamps, in seconds from the file's start."""

    start: float
    end: float
    tokens: list[int]


def split_by_timestamps(
    tokens: Sequence[int], timestamp_begin: int, offset: float, window_seconds: float, time_precision: float
) -> tuple[list[Piece], Optional[int]]:
    """Split a window's tokens at consecutive timestamp tokens into pieces, as Whisper
    does; returns the pieces and where the next window starts, in timestamp steps from
    this one's start (None: after the whole window)."""
    tb = timestamp_begin
    is_ts = np.array([t >= tb for t in tokens], dtype=bool)
    single_ending = len(tokens) >= 2 and not is_ts[-2] and is_ts[-1]
    consecutive = (np.where(is_ts[:-1] & is_ts[1:])[0] + 1).tolist() if len(tokens) > 1 else []
    if consecutive:
        pieces, last = [], 0
        for cur in consecutive + ([len(tokens)] if single_ending else []):
            part = list(tokens[last:cur])
            pieces.append(
                Piece(
                    offset + (part[0] - tb) * time_precision, offset + (part[-1] - tb) * time_precision, part
                )
            )
            last = cur
        return pieces, None if single_ending else tokens[last - 1] - tb
    end = window_seconds
    stamps = [t for t in tokens if t >= tb]
    if stamps and stamps[-1] != tb:
        end = (stamps[-1] - tb) * time_precision
    return [Piece(offset, offset + end, list(tokens))], None


def confidence_over(
    result, pieces: Sequence[Piece], spans: Sequence[tuple[float, float]], timestamp_begin: int
) -> float:
    """The mean log-probability of the text tokens of the ``pieces`` (a split of
    ``result``) that overlap ``spans`` (seconds): how sure a decode is of one stretch of
    its window. The window's average when the decode kept no per-token figures (beam
    search) or has no piece there."""
    if not result.token_logprobs:
        return result.avg_logprob
    lps, k = [], 0
    for p in pieces:
        inside = any(p.start < b and a < p.end for a, b in spans)
        for t in p.tokens:
            if inside and t < timestamp_begin:
                lps.append(result.token_logprobs[k])
            k += 1
    return float(np.mean(lps)) if lps else result.avg_logprob


def dropped_speech(fuller, other, timestamp_begin: int, min_logprob: float = -1.0) -> bool:
    """Whether ``other`` (a window's plain decode) left out speech that ``fuller`` (its
    raised decode) holds: ``fuller`` has more text tokens, by at least 5 and a tenth, and
    the tokens it has that ``other`` lacks (by a token alignment) are sure enough to be
    speech, on average (``min_logprob``, Whisper's threshold for a failed decode). A
    plain decode that skips a quiet first line is surer per token, and worse."""
    a = [t for t in fuller.tokens if t < timestamp_begin]
    b = [t for t in other.tokens if t < timestamp_begin]
    if len(a) - len(b) < max(5, len(b) / 10):
        return False
    lps = fuller.token_logprobs
    if not lps:
        return True  # beam search keeps no per-token figures: the count decides
    lps = [lp for t, lp in zip(fuller.tokens, lps) if t < timestamp_begin]
    matched = set()
    for block in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
        matched.update(range(block.a, block.a + block.size))
    added = [lp for i, lp in enumerate(lps) if i not in matched]
    return bool(added) and float(np.mean(added)) >= min_logprob


def decode_with_fallback(
    decode: Callable[[float, bool], object],
    temperatures: Sequence[float],
    options: TranscribeOptions,
    loops: Callable[[object], int],
):
    """Decode a window at each temperature in turn until one passes: Whisper's checks
    (``needs_fallback``) and no loop (``loops(result)``: how many of its segments
    repeat). ``decode(temperature, with_prompt)``: a retry for a loop goes without the
    previous text, which is what a loop feeds on. Returns the first result that passes,
    else the one with the fewest looping segments (the last of those)."""
    best, best_loops = None, None
    with_prompt = True
    for t in temperatures:
        result = decode(t, with_prompt)
        n_loops = loops(result)
        if n_loops == 0 and not needs_fallback(result, options):
            return result
        log.info(
            "temperature %.1f: %s; trying again",
            t,
            f"{n_loops} segment(s) repeat" if n_loops else "decoding failed Whisper's checks",
        )
        if n_loops:
            with_prompt = False
        if best is None or n_loops <= best_loops:
            best, best_loops = result, n_loops
    return best


class Transcription:
    """A transcription under way: iterate it for the segments of ``source`` as they are
    decoded (a window or a CLI shows them at once); ``info`` (the language, the
    duration, the windows decoded) is known once the first segment is asked for."""

    def __init__(self, segments_of, info: TranscriptInfo):
        self.info = info
        self._segments = segments_of(info)

    def __iter__(self) -> Iterator[DecodedSegment]:
        return self._segments


def transcribe(
    model,
    source,
    options: TranscribeOptions = TranscribeOptions(),
    progress: Optional[Callable[[Progress], None]] = None,
    cancel: Optional[Callable[[], bool]] = None,
    speech: Optional[np.ndarray] = None,
) -> Transcription:
    """Transcribe ``source`` (a media path or 16 kHz float32 samples) in 30-s windows.

    ``progress`` gets seconds done; ``cancel`` is polled between windows (``Cancelled``
    is raised, what was yielded before stays). ``speech``: the samples'
    ``vad.speech_mask`` when the caller has it already (read only when
    ``uses_speech(options)``).
    """
    return Transcription(
        lambda info: _segments(model, source, options, progress, cancel, info, speech), TranscriptInfo()
    )


def _segments(
    model,
    source,
    options: TranscribeOptions,
    progress: Optional[Callable[[Progress], None]],
    cancel: Optional[Callable[[], bool]],
    info: TranscriptInfo,
    speech: Optional[np.ndarray],
) -> Iterator[DecodedSegment]:
    """The segments of ``transcribe``; ``info`` is the ``Transcription``'s, filled as
    the first window is read."""
    import mlx.core as mx

    from subtitler.engine import guards
    from subtitler.engine.backends import backend_for
    from subtitler.engine.level import speech_gain
    from subtitler.engine.runtime import ensure_thread_stream
    from subtitler.engine.whisper.decoding import DecodingOptions, DecodingTask, detect_language
    from subtitler.engine.whisper.timing import add_word_timestamps
    from subtitler.engine.whisper.tokenizer import get_tokenizer
    from subtitler.engine.word_edges import refine_words, with_edges

    ensure_thread_stream()
    backend = backend_for(model, options.compute_type)
    started = time.perf_counter()
    samples = (
        audio_mod.load_audio(source, cancel=cancel)
        if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__")
        else np.asarray(source, np.float32)
    )
    if not uses_speech(options):
        speech = None
    elif speech is None:
        speech = detect_speech(samples, options)
    # Framing as faster-whisper does it (one hop of padding, windows zero-padded in
    # log-mel space), so our output can be compared token for token with the peer.
    gain = speech_gain(samples, speech) if speech is not None and options.level_speech else None
    noise = (
        audio_mod.noise_power(samples, speech) if gain is not None else None
    )  # what raising adds is taken off
    edges = with_edges(samples, speech) if speech is not None and options.word_timestamps else None
    mel = audio_mod.LogMel(
        samples, model.dims.n_mels, padding=HOP_LENGTH, gain=gain, noise=noise
    )  # a window at a time
    # A raised window is also decoded as it is, and the surer decode kept: the gain
    # must never make a window worse (a raised film scene's room tone made it loop).
    plain_mel = audio_mod.LogMel(samples, model.dims.n_mels, padding=HOP_LENGTH) if gain is not None else None
    content_frames = mel.n_frames - 1
    duration = content_frames * HOP_LENGTH / SAMPLE_RATE
    info.duration = duration

    def report(frames: int):
        if progress:
            progress(
                Progress(
                    min(frames, content_frames) / FRAMES_PER_SECOND, duration, time.perf_counter() - started
                )
            )

    def window(seek: int, log_mel=mel):
        seg = audio_mod.pad_or_trim(log_mel.frames(seek, min(seek + N_FRAMES, content_frames)))
        return backend.encode(mx.array(seg)[None])

    def raised_spans(seek: int, size: int) -> list[tuple[float, float]]:
        """The stretches of the window that the gain raises, in seconds."""
        if gain is None:
            return []
        up = np.concatenate(
            [[False], gain[seek : seek + size] > 1.01, [False]]
        )  # per 10-ms frame, as the mel
        edges = np.flatnonzero(np.diff(up.astype(np.int8)))
        return [
            ((seek + a) / FRAMES_PER_SECOND, (seek + b) / FRAMES_PER_SECOND)
            for a, b in zip(edges[::2], edges[1::2])
        ]

    language = options.language if options.language not in (None, "auto") else None
    if language not in (None, "en") and not model.is_multilingual:
        from subtitler.engine.whisper.languages import LANGUAGES

        raise ModelError(
            f"This model reads English only; for {LANGUAGES.get(language, language).title()} choose "
            f"{MULTILINGUAL}."
        )
    tokenizer = get_tokenizer(model.is_multilingual, model.num_languages, language, options.task)

    def speech_start(seek: int) -> int:
        """A window that would open on a long stretch without speech starts at the
        speech instead (a little before it): fewer windows, each with more speech, as
        faster-whisper's VAD gets by cutting the non-speech out; a music intro is not
        decoded at all."""
        if not options.vad_guards:
            return seek
        ahead = np.flatnonzero(speech[seek : seek + N_FRAMES])
        return seek + int(ahead[0]) - LEAD_FRAMES if ahead.size and ahead[0] > LEAD_FRAMES else seek

    report(0)
    if content_frames <= 0:
        return
    seek = speech_start(0)
    kv, encoded = window(seek), seek  # the language is detected on the first window with speech
    if model.is_multilingual and language is None:
        language, info.language_probs = detect_language(model, kv, tokenizer, backend)
        tokenizer = get_tokenizer(True, model.num_languages, language, options.task)
    info.language = language or "en"

    all_tokens: list[int] = []
    kept_logprobs: list[float] = []  # each kept segment's window's mean log-probability
    kept_texts: list[str] = []  # the last segments kept, for the loop check across windows
    prompt_reset_since = 0
    spoken_until = 0.0  # the end of the last word timed: no word starts before it
    resumed_at = -1  # where the last window decoded stopped, at a segment's start (-1: at its end)
    if options.initial_prompt:
        all_tokens += tokenizer.encode(" " + options.initial_prompt.strip())
    temps = _temperatures(options.temperature)
    input_stride = N_FRAMES // model.dims.n_audio_ctx  # 2 mel frames per audio position
    time_precision = TIME_PRECISION

    def pieces_in(result, offset: float, window_seconds: float) -> list[Piece]:
        return split_by_timestamps(
            result.tokens, tokenizer.timestamp_begin, offset, window_seconds, time_precision
        )[0]

    def loops_in(result, pieces_of, before: tuple[str, ...]) -> int:
        if not options.vad_guards:
            return 0
        return len(guards.looping([tokenizer.decode(p.tokens) for p in pieces_of(result)], before))

    def decoder(cross_kv, seek: int, prompt: tuple[int, ...]):
        """``decode(temperature, with_prompt)`` for one window's encoding."""

        def decode(t: float, with_prompt: bool):
            opts = DecodingOptions(
                task=options.task,
                language=info.language,
                temperature=t,
                beam_size=options.beam_size if t == 0 else None,
                best_of=options.best_of if t > 0 else None,
                patience=options.patience,
                prompt=(list(prompt) or None) if with_prompt else None,
                without_timestamps=options.without_timestamps,
                seed=(options.seed * 1_000_003 + seek) % 2**32,  # each window its own draws
            )
            return DecodingTask(model, tokenizer, opts, cancel, backend).run(cross_kv, info.language)

        return decode

    while seek < content_frames:
        if cancel and cancel():
            raise Cancelled()
        seek = speech_start(seek)
        offset = seek * HOP_LENGTH / SAMPLE_RATE
        size = min(N_FRAMES, content_frames - seek)
        seg_duration = size * HOP_LENGTH / SAMPLE_RATE
        prompt = all_tokens[prompt_reset_since:]
        if options.vad_guards and not speech[seek : seek + size].any():
            seek += size  # nothing but silence or noise: nothing to decode
            report(seek)
            continue
        if seek != encoded:
            kv = None  # the last window's keys and values go before this one's are made (base: 37 MB)
            kv, encoded = window(seek), seek
        info.windows.append((offset, offset + seg_duration))

        pieces_of = partial(pieces_in, offset=offset, window_seconds=seg_duration)
        loops = partial(loops_in, pieces_of=pieces_of, before=tuple(kept_texts))
        decoder_on = partial(decoder, seek=seek, prompt=tuple(prompt))

        result = decode_with_fallback(decoder_on(kv), temps, options, loops)
        spans = raised_spans(seek, size)
        if spans:
            plain_kv = window(seek, plain_mel)
            plain = decode_with_fallback(decoder_on(plain_kv), temps, options, loops)
            sure = [
                confidence_over(r, pieces_of(r), spans, tokenizer.timestamp_begin) for r in (result, plain)
            ]
            n_loops = loops(result), loops(plain)
            keep_plain = (n_loops[1], -sure[1]) <= (n_loops[0], RAISED_MARGIN - sure[0])
            if keep_plain and n_loops[1] == n_loops[0]:  # no fewer loops: did it skip speech?
                keep_plain = not dropped_speech(result, plain, tokenizer.timestamp_begin)
            log.info(
                "window at %.1f s: quiet speech raised (log-prob there %.2f) or not (%.2f): %s kept",
                offset,
                sure[0],
                sure[1],
                "the plain decode" if keep_plain else "the raised",
            )
            if keep_plain:
                result, kv = plain, plain_kv
                encoded = -1  # kv now holds the plain window's encoding

        if is_silence(result, options) and not speech_in_tail(speech, seek, size, seek == resumed_at):
            log.info(
                "window at %.1f s (%.1f s long) is silence by Whisper (no-speech %.2f, log-prob %.2f): %r",
                offset,
                seg_duration,
                result.no_speech_prob,
                result.avg_logprob,
                tokenizer.decode([t for t in result.tokens if t < tokenizer.timestamp_begin])[:80],
            )
            seek += size
            report(seek)
            continue

        pieces, advance = split_by_timestamps(
            result.tokens, tokenizer.timestamp_begin, offset, seg_duration, time_precision
        )
        seek += size if advance is None else advance * input_stride
        resumed_at = -1 if advance is None else seek  # where Whisper began a segment it did not finish
        new = [
            DecodedSegment(
                start=round(p.start, 3),
                end=round(p.end, 3),
                text=tokenizer.decode(p.tokens),
                tokens=p.tokens,  # timestamps included: they go back into the prompt
                avg_logprob=result.avg_logprob,
                no_speech_prob=result.no_speech_prob,
                compression_ratio=result.compression_ratio,
                temperature=result.temperature,
            )
            for p in pieces
        ]
        new = [s for s in new if s.text.strip() and s.start != s.end]

        if options.word_timestamps and new:
            add_word_timestamps(model, tokenizer, new, kv, offset, size, backend)
            for s in new:
                spoken_until = refine_words(s.words, speech, not_before=spoken_until, edges=edges)
                if s.words:
                    s.start, s.end = s.words[0].start, s.words[-1].end
            new = [s for s in new if s.text]  # a segment inside the word before it is gone
        if options.vad_guards:
            repeats = set(
                guards.looping([s.text for s in new], kept_texts)
            )  # what still loops after the retries
            for i in sorted(repeats):
                log.info("dropped a repeated segment at %.1f s: %r", new[i].start, new[i].text.strip())
            new = [
                s
                for i, s in enumerate(new)
                if i not in repeats and not guards.is_guess(s, speech, options.min_speech_fraction)
            ]
        for s in new:
            s.end = min(s.end, duration)
            s.start = min(s.start, s.end)
            yield s
        kept_logprobs += [s.avg_logprob for s in new]
        kept_texts = (kept_texts + [s.text for s in new])[-guards.SEGMENT_REPEATS :]
        all_tokens += [t for s in new for t in s.tokens]
        if not options.condition_on_previous_text or result.temperature > 0.5:
            prompt_reset_since = len(all_tokens)
        report(seek)
    if (
        not model.is_multilingual
        and options.language in (None, "auto")
        and unsure_throughout(kept_logprobs, options)
    ):
        log.warning(
            "Whisper was unsure of nearly everything it wrote (mean log-probability %.1f). This model reads "
            "English only: if the speech is in another language, choose %s.",
            float(np.mean(kept_logprobs)),
            MULTILINGUAL,
        )
