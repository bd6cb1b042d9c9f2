"""Even out the speakers' loudness before recognition.

A speaker 25 dB under another in the same 30-s window loses words, and costs the loud
speaker words too (the decoder's context is one window of both): on benchmarks/
vad_clips.py's loud and quiet voices, tiny.en's WER on the quiet sentences went from
0.06 (all at one level) to 0.26, and a loud sentence next to a quiet one from 0.0 to
0.5. So each speech region well under the loudest one is raised to its level, in the
audio the recogniser sees only (the waveform, the player and the speech detector keep
the file as it is). Recordings whose speech sits at one level get no gain at all.

Raising a region raises its noise as well, and a quiet voice is nearer the noise floor:
so ``audio.LogMel`` takes the added noise off the raised frames' spectrum again
(``audio.noise_power`` measures the floor where there is no speech). Figures:
benchmarks/README.md.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from subtitler.engine.vad import frame_db, percentile

JOIN_FRAMES = 50  # speech frames (10 ms) this close are one region: a phrase, not a word
MIN_REFERENCE_FRAMES = 50  # only regions with 0.5 s of speech set the reference level
MIN_RAISED_FRAMES = 30  # and only those with 0.3 s of it are raised (not a breath after a phrase)
LEVEL_GAP_DB = 10.0  # a region this far under the loudest is raised...
MAX_GAIN_DB = 40.0  # ...by at most this much
PAD_FRAMES = 20  # a region is raised from 0.2 s before its first speech frame to 0.2 s after its last
RAMP_FRAMES = 5  # the gain rises and falls over 50 ms


def speech_regions(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of speech frames, joined across gaps under ``JOIN_FRAMES``: (first, stop) pairs."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > JOIN_FRAMES)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    stops = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    return list(zip(starts.tolist(), stops.tolist()))


def speech_gain(samples: np.ndarray, mask: np.ndarray) -> Optional[np.ndarray]:
    """A linear gain per 10-ms frame that brings quiet speech regions up to the loudest
    region's level (the 90th percentile of each one's speech frames, in dB); ``None``
    when no region is ``LEVEL_GAP_DB`` under it."""
    db = frame_db(samples)[: len(mask)]
    mask = mask[: len(db)]
    regions = speech_regions(mask)
    levels = [(a, b, percentile(db[a:b][mask[a:b]], 90), int(mask[a:b].sum())) for a, b in regions]
    reference = max((level for _, _, level, n in levels if n >= MIN_REFERENCE_FRAMES), default=None)
    if reference is None:
        return None
    gain_db = np.zeros(len(db), np.float32)
    for a, b, level, n in levels:
        if n >= MIN_RAISED_FRAMES and reference - level >= LEVEL_GAP_DB:
            lo, hi = max(0, a - PAD_FRAMES), min(len(db), b + PAD_FRAMES)
            gain_db[lo:hi] = np.maximum(gain_db[lo:hi], min(reference - level, MAX_GAIN_DB))
    if not gain_db.any():
        return None
    ramp = np.ones(RAMP_FRAMES, np.float32) / RAMP_FRAMES
    gain_db = np.convolve(gain_db, ramp, mode="same")
    return (10 ** (gain_db / 20)).astype(np.float32)
