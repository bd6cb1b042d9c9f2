"""What the engine hands out and takes in: decoded words and segments (seconds),
transcription options, progress and what was learnt about the audio. Plain data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class DecodedWord:
    start: float
    end: float
    word: str
    probability: float


@dataclass
class DecodedSegment:
    start: float  # seconds
    end: float
    text: str
    tokens: list[int] = field(default_factory=list)
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 0.0
    temperature: float = 0.0
    words: list[DecodedWord] = field(default_factory=list)


@dataclass
class TranscribeOptions:
    language: Optional[str] = None  # None or "auto": detect
    task: str = "transcribe"
    beam_size: int = 1
    best_of: int = 5
    patience: float = 1.0
    temperature: Sequence[float] | float = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    compression_ratio_threshold: Optional[float] = 2.4
    logprob_threshold: Optional[float] = -1.0
    no_speech_threshold: Optional[float] = 0.6
    condition_on_previous_text: bool = True
    initial_prompt: Optional[str] = None
    word_timestamps: bool = False
    without_timestamps: bool = False
    # Speech-aware guards from the speech detector: skip windows without any speech, drop
    # segments decoded over noise or stuck in a repetition loop.
    vad_guards: bool = True
    min_speech_fraction: float = 0.1
    level_speech: bool = True  # raise quiet speech to the loudest speech's level (engine/level.py)
    seed: int = 0  # sampling at temperature > 0 draws from this seed: same input, same output
    compute_type: str = (
        "auto"  # what the C decoding steps' weights are read as: auto, float32, int8 (backends)
    )


@dataclass
class Progress:
    done: float  # seconds of audio processed
    total: float
    elapsed: float  # wall seconds since start

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def eta(self) -> Optional[float]:
        """Seconds left, extrapolated from the speed so far."""
        if self.done <= 0 or self.elapsed <= 0:
            return None
        return max(0.0, (self.total - self.done) * self.elapsed / self.done)


@dataclass
class TranscriptInfo:
    language: str = "en"
    language_probs: Optional[dict] = None
    duration: float = 0.0
    windows: list = field(default_factory=list)  # (start, end) in seconds of each window decoded
