"""Audio in: probe a media file, extract 16 kHz mono float32 with ffmpeg, log-mel.

Pure numpy; the engine converts the mel to an MLX array itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from subtitler.errors import Cancelled, MediaError

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
CHUNK_LENGTH = 30
N_SAMPLES = CHUNK_LENGTH * SAMPLE_RATE  # 480000 samples in a 30-second window
N_FRAMES = N_SAMPLES // HOP_LENGTH  # 3000 mel frames per window
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100: 10 ms per mel frame
N_SAMPLES_PER_TOKEN = HOP_LENGTH * 2  # the conv stem has stride 2
TOKENS_PER_SECOND = SAMPLE_RATE // N_SAMPLES_PER_TOKEN  # 50: 20 ms per audio position

ASSETS = Path(__file__).parent / "assets"

ProgressFn = Callable[[float], None]  # fraction done, 0..1
CancelFn = Callable[[], bool]  # True when the user asked to stop


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """``$SUBTITLER_FFMPEG``, else the static binary imageio-ffmpeg ships, else the system's.

    The static binary comes first because it starts in about 15 ms, where a system
    ffmpeg linked against 200-odd shared libraries took 110 ms here; every file is
    probed and decoded by a fresh process.
    """
    override = os.environ.get("SUBTITLER_FFMPEG")
    if override:
        return override
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):  # no wheel, or no binary for this platform
        pass
    found = shutil.which("ffmpeg")
    if found:
        return found
    raise MediaError("ffmpeg was not found: install ffmpeg or the imageio-ffmpeg package.")


@dataclass(frozen=True)
class MediaInfo:
    path: str
    duration: float  # seconds, 0.0 when unknown
    has_audio: bool
    has_video: bool
    video_size: Optional[tuple[int, int]] = None  # width, height of the first video stream


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"Stream #\d+:\d+.*?: (Audio|Video):")
_PICTURE = re.compile(r"Stream #\d+:\d+.*?: Video:.*?, (\d{2,5})x(\d{2,5})")


def _check_path(path: str) -> None:
    p = Path(path)
    if not p.exists():
        raise MediaError(f"The file {path} does not exist.")
    if p.is_dir():
        raise MediaError(f"{path} is a folder, not a media file.")
    if not os.access(p, os.R_OK):
        raise MediaError(f"The file {path} cannot be read: permission denied.")
    if p.stat().st_size == 0:
        raise MediaError(f"The file {path} is empty.")


def probe(path: str) -> MediaInfo:
    """Duration and streams of a media file, read from ffmpeg's header dump."""
    path = os.fspath(path)
    _check_path(path)
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path],
        capture_output=True,
        text=True,
        errors="replace",
    )
    err = proc.stderr
    kinds = set(_STREAM.findall(err))
    if not kinds:
        raise MediaError(f"{os.path.basename(path)} is not a media file ffmpeg can read.")
    m = _DURATION.search(err)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else 0.0
    size = _PICTURE.search(err)
    info = MediaInfo(path, duration, "Audio" in kinds, "Video" in kinds,
                     (int(size[1]), int(size[2])) if size else None)
    if not info.has_audio:
        raise MediaError(f"{os.path.basename(path)} has no audio track to transcribe.")
    return info


def load_audio(
    path: str,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[CancelFn] = None,
    info: Optional[MediaInfo] = None,
) -> np.ndarray:
    """Decode the first audio stream to 16 kHz mono float32, streamed from ffmpeg.

    ``progress`` gets the fraction decoded; ``cancel`` is polled between chunks.
    """
    path = os.fspath(path)
    _check_path(path)
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-threads", "0",
        "-i", path, "-map", "0:a:0", "-vn", "-f", "s16le", "-ac", "1",
        "-acodec", "pcm_s16le", "-ar", str(SAMPLE_RATE), "-",
    ]
    chunks: list[bytes] = []
    got = 0
    # The decoder starts first, and the probe (clear errors, the duration for progress)
    # runs while it does: one ffmpeg start-up (about 40 ms here) less to wait for.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        info = info or probe(path)
        expected = max(1, int(info.duration * SAMPLE_RATE))
        assert proc.stdout is not None
        while True:
            block = proc.stdout.read(1 << 20)
            if not block:
                break
            chunks.append(block)
            got += len(block) // 2
            if progress:
                progress(min(1.0, got / expected))
            if cancel and cancel():
                raise Cancelled()
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        rc = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    raw = b"".join(chunks)
    raw = raw[: len(raw) // 2 * 2]
    if rc != 0 and not raw:
        first = stderr.strip().splitlines()[-1] if stderr.strip() else "unknown error"
        raise MediaError(f"{os.path.basename(path)} could not be decoded ({first}).")
    if not raw:
        raise MediaError(f"{os.path.basename(path)} contains no decodable audio.")
    if progress:
        progress(1.0)
    return np.frombuffer(raw, np.int16).astype(np.float32) / 32768.0


@lru_cache(maxsize=2)
def mel_filters(n_mels: int) -> np.ndarray:
    """Whisper's mel filterbank, shape (n_mels, N_FFT // 2 + 1)."""
    if n_mels not in (80, 128):
        raise ValueError(f"Unsupported number of mel bands: {n_mels}")
    with np.load(ASSETS / "mel_filters.npz") as f:
        return f[f"mel_{n_mels}"].astype(np.float32)


@lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    return np.hanning(N_FFT + 1)[:-1].astype(np.float32)


def log_mel_spectrogram(audio: np.ndarray, n_mels: int = 80, padding: int = 0) -> np.ndarray:
    """Whisper's log-mel: shape (n_frames, n_mels), float32.

    Centered STFT with reflect padding, power spectrum, mel projection, log10 clamped
    to 8 below the maximum, scaled to roughly [-1, 1]. Computed in blocks so an hour
    of audio never holds its whole complex spectrum in memory.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if padding:
        audio = np.pad(audio, (0, padding))
    half = N_FFT // 2
    x = np.pad(audio, (half, half), mode="reflect") if audio.size > half else np.pad(audio, (half, half))
    n_frames = 1 + (x.size - N_FFT) // HOP_LENGTH - 1  # Whisper drops the last frame
    filters = mel_filters(n_mels).T  # (201, n_mels)
    window = _hann()
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP_LENGTH]
    out = np.empty((n_frames, n_mels), dtype=np.float32)
    block = 4096
    for i in range(0, n_frames, block):
        spec = np.fft.rfft(frames[i : min(i + block, n_frames)] * window, axis=-1)
        power = (spec.real**2 + spec.imag**2).astype(np.float32)
        out[i : i + block] = power @ filters
    np.maximum(out, 1e-10, out=out)
    np.log10(out, out=out)
    np.maximum(out, out.max() - 8.0, out=out)
    out += 4.0
    out /= 4.0
    return out


def pad_or_trim(mel: np.ndarray, length: int = N_FRAMES) -> np.ndarray:
    """Pad with zeros or trim along the frame axis (axis 0) to ``length`` frames."""
    if mel.shape[0] > length:
        return mel[:length]
    if mel.shape[0] < length:
        return np.pad(mel, ((0, length - mel.shape[0]), (0, 0)))
    return mel
