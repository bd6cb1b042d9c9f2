"""Silero VAD (v6, 16 kHz), the network that faster-whisper and WhisperX run, ported
to NumPy: a speech probability for every 32 ms of audio.

The weights come from Silero's ONNX file (``packaging/extract_silero_vad.py``; MIT,
``assets/LICENSE.silero``); neither ONNX Runtime nor torch is needed. They are v6.0's
(silero-vad 6.0 and 6.1, and faster-whisper 1.2.1's), not v6.2's: on real voices kept
quiet under room tone or music, v6.2 heard less of the speech, and the speech guard
dropped lines Whisper had read right (benchmarks/README.md, twentieth pass). Each 512-sample
chunk, with the 64 samples before it, goes through a 4-frame STFT, four small
convolutions and an LSTM cell whose state runs from chunk to chunk, then a sigmoid.
Everything but the LSTM is independent per chunk, so it runs for all chunks at once:
the STFT by FFT in C (``stft_magnitudes_fft``), the convolutions and the LSTM's input
as matrix products (through the preloaded BLAS when there is one); the LSTM's
recurrence runs in C (``lstm_sequence``). Where the kernels were not built, NumPy
computes the STFT as the model does, by products with its DFT basis, and the
recurrence step by step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from subtitler.engine.kernels import blas, native

CHUNK = 512  # samples: one probability per 32 ms
CONTEXT = 64  # samples of the previous chunk each chunk sees
WEIGHTS = Path(__file__).resolve().parent / "assets" / "silero_vad.npz"


@lru_cache(maxsize=1)
def _weights() -> dict[str, np.ndarray]:
    with np.load(WEIGHTS) as z:
        return {k: np.ascontiguousarray(z[k], np.float32) for k in z.files}


FRAMES = 4  # STFT frames of 256 samples, HOP apart, in each chunk's 640
LAYERS = ((1, 4), (2, 4), (2, 2), (1, 1))  # the encoder's convolutions: stride, input positions


def _banded(w: np.ndarray, stride: int, length: int, outputs: range) -> tuple[slice, slice, np.ndarray]:
    """A conv1d (kernel 3, padding 1, ``stride``) over ``length`` positions, for the
    output positions ``outputs``, as one matrix over the input positions they see: the
    columns it reads, those it writes (channels last), and the matrix (outputs * C_out,
    inputs * C_in), each output position's row block holding its taps (the padding's
    are left out)."""
    c_out, c_in, _ = w.shape
    taps = [(j, j * stride + k - 1, k) for j in outputs for k in range(3) if 0 <= j * stride + k - 1 < length]
    first, last = min(q for _, q, _ in taps), max(q for _, q, _ in taps)
    band = np.zeros((len(outputs) * c_out, (last - first + 1) * c_in), np.float32)
    for j, q, k in taps:
        row, col = (j - outputs[0]) * c_out, (q - first) * c_in
        band[row : row + c_out, col : col + c_in] = w[:, :, k]
    return (
        slice(first * c_in, (last + 1) * c_in),
        slice(outputs[0] * c_out, (outputs[-1] + 1) * c_out),
        band,
    )


@lru_cache(maxsize=1)
def _encoder() -> list[tuple[list[tuple[slice, slice, np.ndarray]], np.ndarray]]:
    """Each convolution as banded matrices, one per half of its output positions (each
    reads only the input positions that half sees: conv 0 and 1 then take a quarter
    and a third fewer multiply-adds), and its bias repeated per output position."""
    w = _weights()
    layers = []
    for i, (stride, length) in enumerate(LAYERS):
        weight, bias = w[f"encoder_{i}_reparam_conv_weight"], w[f"encoder_{i}_reparam_conv_bias"]
        n_out = (length - 1) // stride + 1
        halves = [range(0, n_out)] if n_out < 2 else [range(0, n_out // 2), range(n_out // 2, n_out)]
        layers.append(([_banded(weight, stride, length, h) for h in halves], np.tile(bias, n_out)))
    return layers


HOP = 128  # samples between the STFT's frames


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    """The STFT's window: the DFT basis's first row (frequency 0, where the cosine is 1)."""
    return np.ascontiguousarray(_weights()["stft_forward_basis_buffer"][0, 0, :])


def _magnitudes(audio: np.ndarray, n: int) -> np.ndarray:
    """The STFT's magnitudes for ``n`` chunks of ``audio`` (as ``_features`` takes it):
    (n, FRAMES * 129), each frame's 129 bins together."""
    basis = _weights()["stft_forward_basis_buffer"][:, 0, :]
    half = basis.shape[0] // 2
    lib = native.library()
    if lib is not None:  # by FFT, a few times faster than the products below
        out = np.empty((n, FRAMES * half), np.float32)
        lib.stft_magnitudes_fft(
            audio.ctypes.data,
            n,
            CHUNK,
            CHUNK + CONTEXT,
            FRAMES,
            HOP,
            _window().ctypes.data,
            out.ctypes.data,
            native.workers(),
        )
        return out
    # The model's own way: products with its windowed DFT basis (real parts, then
    # imaginary ones), one per frame position, over each chunk's row with the row's
    # end reflected.
    rows = np.lib.stride_tricks.sliding_window_view(audio, CHUNK + CONTEXT)[::CHUNK][:n]
    x = np.concatenate([rows, rows[:, -2 : -CONTEXT - 2 : -1]], axis=1)  # (n, 640)
    spec = np.empty((n, FRAMES, basis.shape[0]), np.float32)
    for f in range(FRAMES):
        blas.product(x[:, HOP * f : HOP * f + 2 * HOP], basis, out=spec[:, f])
    h = np.square(spec[..., :half])  # (np.hypot took twice as long)
    h += np.square(spec[..., half:])
    return np.sqrt(h, out=h).reshape(n, FRAMES * half)


def _features(audio: np.ndarray, n: int) -> np.ndarray:
    """The LSTM's input for ``n`` chunks: (n, 128). ``audio`` holds the 64 samples
    before the first chunk, then the chunks (n * 512 samples)."""
    h = _magnitudes(audio, n)
    # The four convolutions: over so few positions, each is a product or two with
    # banded matrices, with no copies of the input per tap.
    for bands, bias in _encoder():
        out = np.empty((n, len(bias)), np.float32)
        for reads, writes, band in bands:
            blas.product(h[:, reads], band, out=out[:, writes])
        out += bias
        h = np.maximum(out, 0, out=out)
    return h


LSTM_LANES = 64  # gates a step of lstm_sequence holds in registers


@lru_cache(maxsize=1)
def _packed_recurrent() -> np.ndarray:
    """The recurrent weights as ``lstm_sequence`` reads them: transposed (h, 4h), in
    blocks of ``LSTM_LANES`` gates, each block's (h, lanes) contiguous, so that a step
    reads every block as one sequential stream."""
    whh_t = _weights()["decoder_rnn_weight_hh"].T
    return np.concatenate(
        [whh_t[:, r : r + LSTM_LANES].ravel() for r in range(0, whh_t.shape[1], LSTM_LANES)]
    )


def _lstm(x: np.ndarray, state: np.ndarray) -> np.ndarray:
    """The LSTM cell over the chunks in order, from ``state`` (2, 128: hidden, cell),
    which it leaves at the last chunk's: the hidden states (chunks, 128)."""
    w = _weights()
    gates_in = blas.product(x, w["decoder_rnn_weight_ih"])
    gates_in += w["decoder_rnn_bias_ih"] + w["decoder_rnn_bias_hh"]
    whh = w["decoder_rnn_weight_hh"]
    n, hidden = len(x), whh.shape[1]
    out = np.empty((n, hidden), np.float32)
    lib = native.library()
    if lib is not None:
        native.check(
            lib.lstm_sequence(
                gates_in.ctypes.data,
                _packed_recurrent().ctypes.data,
                n,
                hidden,
                out.ctypes.data,
                state.ctypes.data,
            ),
            "the speech detector",
        )
        return out
    h, c = state[0].copy(), state[1].copy()
    for t in range(n):
        g = gates_in[t] + whh @ h
        i, f, gg, o = np.split(g, 4)
        c = c / (1 + np.exp(-f)) + np.tanh(gg) / (1 + np.exp(-i))
        h = np.tanh(c) / (1 + np.exp(-o))
        out[t] = h
    state[0], state[1] = h, c
    return out


BLOCK = 4096  # chunks (131 s) at a time: an hour's features at once had taken 2.3 GB


class SpeechStream:
    """``speech_probabilities`` over samples given a block at a time, as a decoder hands
    them over (``audio.load_audio``'s ``on_block``), so the detection is done when the
    audio is: the same probabilities, whatever the blocks (each chunk sees the same 64
    samples before it, the LSTM's state runs on)."""

    def __init__(self):
        self._state = np.zeros((2, _weights()["decoder_rnn_weight_hh"].shape[1]), np.float32)
        self._pending = np.zeros(CONTEXT, np.float32)  # the context, then samples not yet chunked
        self._out: list[np.ndarray] = []

    def feed(self, samples: np.ndarray) -> None:
        """The next samples (copied: the caller may reuse its buffer)."""
        pending = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        n = (len(pending) - CONTEXT) // CHUNK  # whole chunks
        for a in range(0, n, BLOCK):
            b = min(n, a + BLOCK)
            self._out.append(self._probabilities(pending[a * CHUNK : b * CHUNK + CONTEXT], b - a))
        self._pending = pending[n * CHUNK :].copy()

    def finish(self) -> np.ndarray:
        """P(speech) for every chunk fed, the last one zero-padded."""
        if len(self._pending) > CONTEXT:
            audio = np.zeros(CONTEXT + CHUNK, np.float32)
            audio[: len(self._pending)] = self._pending
            self._out.append(self._probabilities(audio, 1))
            self._pending = self._pending[-CONTEXT:]
        return np.concatenate(self._out) if self._out else np.zeros(0, np.float32)

    def _probabilities(self, audio: np.ndarray, n: int) -> np.ndarray:
        """``audio``: the context, then ``n`` chunks."""
        w = _weights()
        h = _lstm(_features(audio, n), self._state)
        logits = np.maximum(h, 0) @ w["decoder_decoder_2_weight"][0, :, 0] + w["decoder_decoder_2_bias"][0]
        return 1 / (1 + np.exp(-logits))


def speech_probabilities(samples: np.ndarray, cancel=None) -> np.ndarray:
    """P(speech) for each 32-ms chunk of 16 kHz mono ``samples``. ``cancel`` is polled
    between blocks (about every 2 minutes of audio): ``Cancelled`` when it says so."""
    from subtitler.engine.audio import release
    from subtitler.errors import Cancelled

    stream, step = SpeechStream(), BLOCK * CHUNK
    for a in range(0, len(samples), step):
        if cancel is not None and cancel():
            raise Cancelled()
        stream.feed(samples[a : a + step])
        release(samples, a, a + step)  # (copied)
    return stream.finish()
