"""Long-form transcription: 30-second windows that seek by the last timestamp token.

``transcribe`` is a generator of ``DecodedSegment`` s, so a window or a CLI can show
them as they are decoded. Progress is reported in seconds of audio done, and a
cancel callback is polled between windows: what was decoded before it stays.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, Optional

import numpy as np

from subtitler.engine import audio as audio_mod
from subtitler.engine.audio import FRAMES_PER_SECOND, HOP_LENGTH, N_FRAMES, SAMPLE_RATE
from subtitler.engine.types import DecodedSegment, Progress, TranscribeOptions, TranscriptInfo
from subtitler.errors import Cancelled

# The engine is imported lazily so ``subtitler`` stays importable without MLX.


SKIP_FRAMES = 100  # a window opening on more than 1 s without speech skips ahead...
LEAD_FRAMES = 20  # ...to 0.2 s before the speech


def _temperatures(t) -> tuple[float, ...]:
    return tuple(t) if isinstance(t, (list, tuple)) else (float(t),)


def uses_speech(options: TranscribeOptions) -> bool:
    """Whether a transcription with ``options`` reads the speech mask."""
    return options.word_timestamps or options.vad_guards


def detect_speech(samples: np.ndarray, options: TranscribeOptions) -> Optional[np.ndarray]:
    """The speech mask (per 10-ms frame) that ``options`` use, or None when they use none."""
    from subtitler.engine.vad import speech_mask

    return speech_mask(samples) if uses_speech(options) else None


def transcribe(
    model,
    source,
    options: TranscribeOptions = TranscribeOptions(),
    progress: Optional[Callable[[Progress], None]] = None,
    cancel: Optional[Callable[[], bool]] = None,
    info: Optional[TranscriptInfo] = None,
    speech: Optional[np.ndarray] = None,
) -> Iterator[DecodedSegment]:
    """Yield segments of ``source`` (a media path or 16 kHz float32 samples).

    ``info`` (optional) is filled with the language and duration once known.
    ``speech``: the samples' ``vad.speech_mask`` when the caller has it already (read
    only when ``uses_speech(options)``).
    """
    import mlx.core as mx

    from subtitler.engine.runtime import ensure_thread_stream
    from subtitler.engine.whisper.backend import backend_for
    from subtitler.engine.whisper.decoding import DecodingOptions, DecodingTask, detect_language
    from subtitler.engine.whisper.timing import add_word_timestamps
    from subtitler.engine.whisper.tokenizer import get_tokenizer
    from subtitler.engine.level import speech_gain
    from subtitler.engine.vad import is_guess, refine_words, with_edges

    ensure_thread_stream()
    backend = backend_for(model)
    started = time.perf_counter()
    samples = audio_mod.load_audio(source, cancel=cancel) if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__") else np.asarray(source, np.float32)
    info = info if info is not None else TranscriptInfo()
    if not uses_speech(options):
        speech = None
    elif speech is None:
        speech = detect_speech(samples, options)
    # Framing as faster-whisper does it (one hop of padding, windows zero-padded in
    # log-mel space), so our output can be compared token for token with the peer.
    gain = speech_gain(samples, speech) if speech is not None and options.level_speech else None
    noise = audio_mod.noise_power(samples, speech) if gain is not None else None  # what raising adds is taken off
    edges = with_edges(samples, speech) if speech is not None and options.word_timestamps else None
    mel = audio_mod.LogMel(samples, model.dims.n_mels, padding=HOP_LENGTH, gain=gain, noise=noise)  # a window at a time
    content_frames = mel.n_frames - 1
    duration = content_frames * HOP_LENGTH / SAMPLE_RATE
    info.duration = duration

    def report(frames: int):
        if progress:
            progress(Progress(min(frames, content_frames) / FRAMES_PER_SECOND, duration,
                              time.perf_counter() - started))

    def window(seek: int):
        seg = audio_mod.pad_or_trim(mel.frames(seek, min(seek + N_FRAMES, content_frames)))
        return backend.encode(mx.array(seg)[None])

    language = options.language if options.language not in (None, "auto") else None
    tokenizer = get_tokenizer(model.is_multilingual, model.num_languages, language, options.task)

    def speech_start(seek: int) -> int:
        """A window that would open on a long stretch without speech starts at the
        speech instead (a little before it): fewer windows, each with more speech, as
        faster-whisper's VAD gets by cutting the non-speech out; a music intro is not
        decoded at all."""
        if not options.vad_guards:
            return seek
        ahead = np.flatnonzero(speech[seek : seek + N_FRAMES])
        return seek + int(ahead[0]) - LEAD_FRAMES if ahead.size and ahead[0] > SKIP_FRAMES else seek

    report(0)
    if content_frames <= 0:
        return
    seek = speech_start(0)
    kv, encoded = window(seek), seek  # the language is detected on the first window with speech
    if model.is_multilingual and language is None:
        language, info.language_probs = detect_language(model, kv, tokenizer)
        tokenizer = get_tokenizer(True, model.num_languages, language, options.task)
    info.language = language or "en"

    all_tokens: list[int] = []
    prompt_reset_since = 0
    spoken_until = 0.0  # the end of the last word timed: no word starts before it
    if options.initial_prompt:
        all_tokens += tokenizer.encode(" " + options.initial_prompt.strip())
    temps = _temperatures(options.temperature)
    input_stride = N_FRAMES // model.dims.n_audio_ctx  # 2 mel frames per audio position
    time_precision = input_stride * HOP_LENGTH / SAMPLE_RATE  # 0.02 s

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
            kv, encoded = window(seek), seek
        info.windows.append((offset, offset + seg_duration))

        result = None
        for t in temps:
            opts = DecodingOptions(
                task=options.task, language=info.language, temperature=t,
                beam_size=options.beam_size if t == 0 else None,
                best_of=options.best_of if t > 0 else None,
                patience=options.patience, prompt=prompt or None,
                without_timestamps=options.without_timestamps,
                seed=(options.seed * 1_000_003 + seek) % 2**32,  # each window its own draws
            )
            result = DecodingTask(model, tokenizer, opts, cancel, backend).run(kv, info.language)
            needs_fallback = False
            if options.compression_ratio_threshold is not None and result.compression_ratio > options.compression_ratio_threshold:
                needs_fallback = True
            if options.logprob_threshold is not None and result.avg_logprob < options.logprob_threshold:
                needs_fallback = True
            if options.no_speech_threshold is not None and result.no_speech_prob > options.no_speech_threshold \
                    and options.logprob_threshold is not None and result.avg_logprob < options.logprob_threshold:
                needs_fallback = False  # silence: don't retry, it will be skipped
            if not needs_fallback:
                break

        if options.no_speech_threshold is not None and result.no_speech_prob > options.no_speech_threshold:
            if options.logprob_threshold is None or result.avg_logprob < options.logprob_threshold:
                seek += size
                report(seek)
                continue

        tokens = result.tokens
        new: list[DecodedSegment] = []

        def add(start, end, toks):
            text = tokenizer.decode(toks)
            if not text.strip() or start == end:
                return
            new.append(DecodedSegment(
                start=round(start, 3), end=round(end, 3), text=text,
                tokens=list(toks),  # timestamps included: they go back into the prompt
                avg_logprob=result.avg_logprob, no_speech_prob=result.no_speech_prob,
                compression_ratio=result.compression_ratio, temperature=result.temperature,
            ))

        tb = tokenizer.timestamp_begin
        is_ts = np.array([t >= tb for t in tokens], dtype=bool)
        single_ending = len(tokens) >= 2 and not is_ts[-2] and is_ts[-1]
        consecutive = (np.where(is_ts[:-1] & is_ts[1:])[0] + 1).tolist() if len(tokens) > 1 else []
        if consecutive:
            slices = consecutive + ([len(tokens)] if single_ending else [])
            last = 0
            for cur in slices:
                part = tokens[last:cur]
                add(offset + (part[0] - tb) * time_precision, offset + (part[-1] - tb) * time_precision, part)
                last = cur
            if single_ending:
                seek += size
            else:
                seek += (tokens[last - 1] - tb) * input_stride
        else:
            end = seg_duration
            stamps = [t for t in tokens if t >= tb]
            if stamps and stamps[-1] != tb:
                end = (stamps[-1] - tb) * time_precision
            add(offset, offset + end, tokens)
            seek += size

        if options.word_timestamps and new:
            add_word_timestamps(model, tokenizer, new, kv, offset, size)
            for s in new:
                spoken_until = refine_words(s.words, speech, not_before=spoken_until, edges=edges)
                if s.words:
                    s.start, s.end = s.words[0].start, s.words[-1].end
        if options.vad_guards:
            new = [s for s in new if not is_guess(s, speech, options.min_speech_fraction)]
        for s in new:
            s.end = min(s.end, duration)
            s.start = min(s.start, s.end)
            yield s
        all_tokens += [t for s in new for t in s.tokens]
        if not options.condition_on_previous_text or result.temperature > 0.5:
            prompt_reset_since = len(all_tokens)
        report(seek)
