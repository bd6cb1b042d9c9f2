"""Silero VAD (v6, 16 kHz), the network that faster-whisper and WhisperX run, ported
to NumPy: a speech probability for every 32 ms of audio.

The weights come from Silero's ONNX file (``packaging/extract_silero_vad.py``; MIT,
``assets/LICENSE.silero``); neither ONNX Runtime nor torch is needed. Each 512-sample
chunk, with the 64 samples before it, goes through a 4-frame STFT, four small
convolutions and an LSTM cell whose state runs from chunk to chunk, then a sigmoid.
Everything but the LSTM is independent per chunk, so it runs for all chunks at once
as five matrix products (through the preloaded BLAS when there is one); the LSTM's
recurrence runs in C (``lstm_sequence``) where the kernels were built, in NumPy
elsewhere.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from subtitler.engine.cpu import blas, native

SAMPLE_RATE = 16000
CHUNK = 512  # samples: one probability per 32 ms
CONTEXT = 64  # samples of the previous chunk each chunk sees
WEIGHTS = Path(__file__).resolve().parent / "assets" / "silero_vad.npz"


@lru_cache(maxsize=1)
def _weights() -> dict[str, np.ndarray]:
    with np.load(WEIGHTS) as z:
        return {k: np.ascontiguousarray(z[k], np.float32) for k in z.files}


def _conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int) -> np.ndarray:
    """Conv1d with kernel 3 and padding 1, channels last: x (N, L, C_in) -> (N, L_out, C_out).

    One product of every input position with the three taps' weights, then each output
    position adds its neighbours' tap products (the padding contributes nothing): no
    copy of the input per tap."""
    n, length, c = x.shape
    out_len = (length - 1) // stride + 1
    c_out = w.shape[0]
    taps = blas.product(x.reshape(n * length, c), w.transpose(2, 0, 1).reshape(3 * c_out, c))
    taps = taps.reshape(n, length, 3, c_out)
    centre = np.arange(out_len) * stride
    out = taps[:, centre, 1] + b
    for k in (0, 2):
        source = centre + k - 1
        inside = (source >= 0) & (source < length)
        out[:, inside] += taps[:, source[inside], k]
    return out


def _features(audio: np.ndarray, n: int) -> np.ndarray:
    """The LSTM's input for ``n`` chunks: (n, 128). ``audio`` holds the 64 samples
    before the first chunk, then the chunks (n * 512 samples)."""
    w = _weights()
    # Each row: the chunk's context and the chunk, then 64 samples reflected at the end.
    rows = np.lib.stride_tricks.sliding_window_view(audio, CHUNK + CONTEXT)[::CHUNK][:n]
    x = np.concatenate([rows, rows[:, -2 : -CONTEXT - 2 : -1]], axis=1)  # (n, 640)
    frames = np.lib.stride_tricks.sliding_window_view(x, 256, axis=1)[:, ::128]  # (n, 4, 256)
    # The model's STFT: one product with its windowed DFT basis (real parts, then
    # imaginary ones); through the BLAS on every core that is 3-4x NumPy's FFT here.
    spec = blas.product(frames.reshape(-1, 256), w["stft_forward_basis_buffer"][:, 0, :])
    half = spec.shape[1] // 2
    h = np.sqrt(spec[:, :half] ** 2 + spec[:, half:] ** 2).reshape(n, 4, half)  # (n, 4, 129), channels last
    for i, stride in enumerate((1, 2, 2, 1)):
        h = np.maximum(_conv(h, w[f"encoder_{i}_reparam_conv_weight"], w[f"encoder_{i}_reparam_conv_bias"], stride), 0)
    return np.ascontiguousarray(h[:, 0, :])


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
        whh_t = np.ascontiguousarray(whh.T)  # (h, 4h): the kernel adds one row per hidden unit
        native.check(lib.lstm_sequence(gates_in.ctypes.data, whh_t.ctypes.data, n, hidden, out.ctypes.data,
                                       state.ctypes.data), "the speech detector")
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


def speech_probabilities(samples: np.ndarray) -> np.ndarray:
    """P(speech) for each 32-ms chunk of 16 kHz mono ``samples``."""
    w = _weights()
    n = (len(samples) + CHUNK - 1) // CHUNK
    out = np.empty(n, np.float32)
    state = np.zeros((2, w["decoder_rnn_weight_hh"].shape[1]), np.float32)
    for a in range(0, n, BLOCK):
        b = min(n, a + BLOCK)
        audio = np.zeros((b - a) * CHUNK + CONTEXT, np.float32)  # the context, then the chunks (zero-padded)
        piece = np.asarray(samples[max(0, a * CHUNK - CONTEXT) : b * CHUNK], np.float32)
        start = CONTEXT if a == 0 else 0
        audio[start : start + len(piece)] = piece
        h = _lstm(_features(audio, b - a), state)
        logits = np.maximum(h, 0) @ w["decoder_decoder_2_weight"][0, :, 0] + w["decoder_decoder_2_bias"][0]
        out[a:b] = 1 / (1 + np.exp(-logits))
    return out
