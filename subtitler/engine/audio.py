"""Audio in: probe a media file, extract 16 kHz mono float32 with ffmpeg, log-mel.

Pure numpy; the engine converts the mel to an MLX array itself.
"""

from __future__ import annotations

import mmap
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

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
TIME_PRECISION = N_SAMPLES_PER_TOKEN / SAMPLE_RATE  # 0.02 s: the step of a timestamp token

ASSETS = Path(__file__).parent / "assets"

ProgressFn = Callable[[float], None]  # fraction done, 0..1
CancelFn = Callable[[], bool]  # True when the user asked to stop


def ffmpeg_path(path) -> str:
    """A local file's path as ffmpeg must be given it: absolute, behind ``file:``, so that a
    name such as "notes:final.mp4" or "2024-05-01T10:30.mp4" is not read as a protocol
    ("not a media file")."""
    return "file:" + os.path.abspath(os.fspath(path))


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """``$SUBTITLER_FFMPEG``, else the static binary imageio-ffmpeg ships, else the system's.

    The static binary comes first because it starts several times faster than a system
    ffmpeg linked against 200-odd shared libraries; every file is probed and decoded
    by a fresh process.
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
    subtitle_streams: int = 0
    # A label for each audio stream, in order ("eng, Commentary: aac, stereo"): a film's
    # dubs and commentary, a recording's second microphone. ``load_audio`` reads one.
    audio_tracks: tuple[str, ...] = ()


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"Stream #\d+:\d+.*?: (Audio|Video|Subtitle):")
_PICTURE = re.compile(r"Stream #\d+:\d+.*?: Video:.*?, (\d{2,5})x(\d{2,5})")
_AUDIO = re.compile(
    r"Stream #\d+:\d+(?:\[\w+\])?(?:\((\w+)\))?: Audio: (\w+)[^,]*(?:, \d+ Hz)?(?:, ([\w.() ]+))?"
)
_TITLE = re.compile(r"^\s{4,}title\s*:\s*(.+)$")


def _audio_tracks(dump: str) -> tuple[str, ...]:
    """Each audio stream of ffmpeg's header dump as "language, title: codec, channels"."""
    tracks, lines = [], dump.splitlines()
    for i, line in enumerate(lines):
        m = _AUDIO.search(line)
        if not m:
            continue
        title = None
        for below in lines[i + 1 :]:  # the stream's metadata, indented below it
            if "Stream #" in below or not below.startswith("    "):
                break
            t = _TITLE.match(below)
            title = t[1].strip() if t else title
        names = ", ".join(x for x in (m[1] if m[1] != "und" else None, title) if x)
        details = ", ".join(x.strip() for x in (m[2], m[3]) if x)
        tracks.append(f"{names}: {details}" if names else details)
    return tuple(tracks)


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


def probe_any(path: str) -> MediaInfo:
    """Duration and streams of a media file, read from ffmpeg's header dump."""
    path = os.fspath(path)
    _check_path(path)
    err = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", ffmpeg_path(path)],
        capture_output=True,
        text=True,
        errors="replace",
    ).stderr
    kinds = _STREAM.findall(err)
    if not kinds:
        raise MediaError(f"{os.path.basename(path)} is not a media file ffmpeg can read.")
    m = _DURATION.search(err)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else 0.0
    size = _PICTURE.search(err)
    return MediaInfo(
        path,
        duration,
        "Audio" in kinds,
        "Video" in kinds,
        (int(size[1]), int(size[2])) if size else None,
        kinds.count("Subtitle"),
        _audio_tracks(err),
    )


def probe(path: str) -> MediaInfo:
    """``probe_any`` for a file to transcribe: one without audio is refused."""
    info = probe_any(path)
    if not info.has_audio:
        raise MediaError(f"{os.path.basename(info.path)} has no audio track to transcribe.")
    return info


def load_audio(
    path: str,
    progress: Optional[ProgressFn] = None,
    cancel: Optional[CancelFn] = None,
    info: Optional[MediaInfo] = None,
    track: int = 0,
    on_block: Optional[Callable[[np.ndarray], None]] = None,
) -> np.ndarray:
    """Decode an audio stream (``track``, from 0: the first) to 16 kHz mono float32,
    streamed from ffmpeg.

    ``progress`` gets the fraction decoded; ``cancel`` is polled between chunks;
    ``on_block`` sees each chunk's samples as they arrive, in order (a view: copy what is
    kept), so a pass over them (speech detection) ends with the decoding.
    """
    path = os.fspath(path)
    _check_path(path)
    if track < 0:
        raise MediaError(f"Audio track {track + 1}: tracks are numbered from 1.")
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-threads",
        "0",
        "-i",
        ffmpeg_path(path),
        "-map",
        f"0:a:{track}",
        "-vn",
        "-f",
        "s16le",
        "-ac",
        "1",
        "-acodec",
        "pcm_s16le",
        "-ar",
        str(SAMPLE_RATE),
        "-",
    ]
    # The decoder starts first, and the probe (clear errors, the duration for progress)
    # runs while it does: one ffmpeg start-up less to wait for.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    spill = None  # a long recording goes to a file as it arrives, and is mapped (``release``)
    try:
        info = info or probe(path)
        if track and track >= len(info.audio_tracks):
            has = _tracks(len(info.audio_tracks))
            raise MediaError(f"{os.path.basename(path)} has {has}: there is no track {track + 1}.")
        expected = max(1, int(info.duration * SAMPLE_RATE))
        if expected > LONG_SECONDS * SAMPLE_RATE:
            spill = _spill_file()
        # Converted as it arrives, into room for the duration the header gives: the
        # only copy of the audio held is the float one.
        samples = np.empty(expected + SAMPLE_RATE if spill is None else 1 << 19, np.float32)
        got, odd = 0, b""
        assert proc.stdout is not None
        while True:
            block = proc.stdout.read(1 << 20)
            if not block:
                break
            if odd:
                block, odd = odd + block, b""
            if len(block) % 2:
                block, odd = block[:-1], block[-1:]
            pcm = np.frombuffer(block, np.int16)
            if spill is None and got + pcm.size > LONG_SECONDS * SAMPLE_RATE:
                # Longer than the header said, and long: what came so far goes to the file too.
                spill = _spill_file()
                spill.write(samples[:got].tobytes())
                samples = np.empty(0, np.float32)
            if spill is not None:
                part = (pcm / np.float32(32768.0)).astype(np.float32)
                spill.write(part.tobytes())
            else:
                if got + pcm.size > samples.size:  # longer than the header said: grow in place
                    # (realloc: a large block is remapped, not copied, so the old and the new
                    # are never held at once; pages not yet written take no memory)
                    samples.resize(got + max(pcm.size, got // 4, 60 * SAMPLE_RATE), refcheck=False)
                part = samples[got : got + pcm.size]
                part[:] = pcm
                part /= 32768.0
            if on_block is not None:
                on_block(part)
            got += pcm.size
            if progress:
                progress(min(1.0, got / expected))
            if cancel and cancel():
                raise Cancelled()
        stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        rc = proc.wait()
    except BaseException:
        if spill is not None:
            spill.close()
        raise
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if rc != 0 and not got:
        first = stderr.strip().splitlines()[-1] if stderr.strip() else "unknown error"
        raise MediaError(f"{os.path.basename(path)} could not be decoded ({first}).")
    if not got:
        raise MediaError(f"{os.path.basename(path)} contains no decodable audio.")
    if progress:
        progress(1.0)
    if spill is not None:
        spill.flush()
        # The file has no name (TemporaryFile): the mapping keeps it until it is dropped.
        mapped = np.memmap(spill, np.float32, "r", shape=(got,))
        spill.close()
        return mapped
    return samples[:got]


def _tracks(n: int) -> str:
    return "one audio track" if n == 1 else f"{n} audio tracks"


def peaks(samples: np.ndarray, hop: int) -> np.ndarray:
    """The largest magnitude of each ``hop`` samples (a waveform's outline), a block at a
    time: no copy of the recording is made, and mapped samples are let go behind."""
    n = len(samples) // hop
    out = np.empty(n, np.float32)
    step = max(1, (1 << 22) // hop)  # hops a block
    for a in range(0, n, step):
        b = min(n, a + step)
        block = np.asarray(samples[a * hop : b * hop], np.float32).reshape(b - a, hop)
        out[a:b] = np.maximum(block.max(axis=1), -block.min(axis=1))
        release(samples, a * hop, b * hop)
    return out


def _spill_file():
    """A nameless temporary file in ``spill_dir()`` for a long recording's samples."""
    return tempfile.TemporaryFile(prefix="subtitler-audio-", dir=spill_dir())


def spill_dir() -> str | None:
    """Where long audio is spilled: the user's cache folder, on disk (``/tmp`` is often
    memory), or ``SUBTITLER_CACHE_DIR``; None (the system's temporary folder) when it
    cannot be made."""
    chosen = os.environ.get("SUBTITLER_CACHE_DIR")
    if chosen:
        folder = Path(chosen)
    else:
        home = Path.home()
        default = home / "Library" / "Caches" if sys.platform == "darwin" else home / ".cache"
        folder = Path(os.environ.get("XDG_CACHE_HOME") or default) / "subtitler"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return str(folder)


LONG_SECONDS = 20 * 60  # audio longer than this (by its header) is held in a mapped file, not in memory


def release(samples: np.ndarray, lo: int, hi: int) -> None:
    """Let the memory of samples ``lo:hi`` go, where ``samples`` maps a file (a long
    recording, ``load_audio``): the pages are read in again when next touched. The passes
    over a whole recording call it behind them, so a 3-hour file takes no more memory
    than a short one. A no-op for samples held in memory."""
    base = samples
    while base is not None and not isinstance(getattr(base, "_mmap", None), mmap.mmap):
        base = getattr(base, "base", None)
    if base is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    start = samples.ctypes.data + max(0, lo) * samples.itemsize - base.ctypes.data + base.offset
    stop = samples.ctypes.data + min(hi, samples.size) * samples.itemsize - base.ctypes.data + base.offset
    page = mmap.PAGESIZE
    start, stop = -(-start // page) * page, stop // page * page  # whole pages inside the span
    if stop > start:
        base._mmap.madvise(mmap.MADV_DONTNEED, start, stop - start)


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


def _power(frames: np.ndarray) -> np.ndarray:
    """The power spectrum of each Hann-windowed frame of ``N_FFT`` samples: (frames, 201)."""
    spec = np.fft.rfft(frames * _hann(), axis=-1)
    return (spec.real**2 + spec.imag**2).astype(np.float32)


class LogMel:
    """Whisper's log-mel of a recording, computed a window at a time.

    Centered STFT with reflect padding, power spectrum, mel projection, log10 clamped
    to 8 below the recording's maximum, scaled to roughly [-1, 1]: the same values as
    for the whole file at once, without holding it (3 hours: 346 MB). The maximum
    takes one pass over the audio up front. Its blocks of ``BLOCK`` frames are kept when
    the recording is under ``KEEP_FRAMES``; a longer one computes them again as windows
    ask for them (always the same blocks, so a frame's value never depends on which
    window asked for it), keeping the last two.
    """

    BLOCK = 4096  # frames: 41 s
    KEEP_FRAMES = 1 << 17  # 22 minutes: 42 MB of mel for 80 bands

    SUBTRACT = 2.0  # times the noise a gain adds that is taken off again...
    FLOOR = 0.05  # ...leaving at least this share of each bin's power

    def __init__(
        self,
        audio: np.ndarray,
        n_mels: int = 80,
        padding: int = 0,
        gain: Optional[np.ndarray] = None,
        noise: Optional[np.ndarray] = None,
    ):
        """``gain``: an optional linear gain per ``HOP_LENGTH`` samples, interpolated
        between the hops' centres (``subtitler.engine.level``); ``noise``: the
        recording's noise floor, a power per STFT bin. A frame raised by g carries
        g**2 - 1 times that floor more noise than the recording had: that much is
        taken off its power spectrum again (``SUBTRACT`` times over, as spectral
        subtraction does at a low signal-to-noise ratio; ``FLOOR`` of the power stays)."""
        self.audio = np.asarray(audio, dtype=np.float32)
        self.gain = gain
        self.noise = noise if gain is not None else None
        self.n_mels = n_mels
        self.length = self.audio.size + padding  # the signal: the audio, then ``padding`` zeros
        self.n_frames = self.length // HOP_LENGTH  # Whisper drops the last STFT frame
        self._reflect = self.length > N_FFT // 2
        self._cache: dict[int, np.ndarray] = {}
        self._keep = 2 if self.n_frames > self.KEEP_FRAMES else self.n_frames // self.BLOCK + 1
        self.ceiling = max(
            (float(self._block(i).max()) for i in range(0, self.n_frames, self.BLOCK)), default=-10.0
        )

    def _signal(self, lo: int, hi: int) -> np.ndarray:
        """Samples ``lo:hi`` of the signal padded by N_FFT // 2 on each side (reflected)."""
        half = N_FFT // 2
        a, b = lo - half, hi - half  # positions in the unpadded signal
        out = np.zeros(hi - lo, np.float32)
        n = self.audio.size
        m0, m1 = max(a, 0), min(b, n)
        if m1 > m0:
            out[m0 - a : m1 - a] = self.audio[m0:m1]
            if self.gain is not None:
                out[m0 - a : m1 - a] *= self._gain_at(np.arange(m0, m1))
        if self._reflect:
            edges = [np.arange(a, min(b, 0)), np.arange(max(a, self.length), b)]
            for pos, mirror in zip(edges, (-edges[0], 2 * self.length - 2 - edges[1])):
                inside = mirror < n  # the reflection of the zero padding is zeros
                if inside.any():
                    out[pos[inside] - a] = self.audio[mirror[inside]]
                    if self.gain is not None:
                        out[pos[inside] - a] *= self._gain_at(mirror[inside])
        return out

    def _gain_at(self, index: np.ndarray) -> np.ndarray:
        """The gain at sample positions ``index`` (ascending)."""
        first = max(0, int(index[0]) // HOP_LENGTH - 1)
        stop = min(len(self.gain), int(index[-1]) // HOP_LENGTH + 2)
        if stop <= first:  # past the last hop: its gain holds
            return np.full(index.size, self.gain[-1], np.float32)
        centres = np.arange(first, stop) * HOP_LENGTH + HOP_LENGTH / 2
        return np.interp(index, centres, self.gain[first:stop]).astype(np.float32)

    def _block(self, first: int) -> np.ndarray:
        """log10 of the mel power of frames ``first`` to ``first + BLOCK``, unclamped."""
        block = self._cache.get(first)
        if block is None:
            stop = min(first + self.BLOCK, self.n_frames)
            x = self._signal(first * HOP_LENGTH, (stop - 1) * HOP_LENGTH + N_FFT)
            release(self.audio, first * HOP_LENGTH - N_FFT, stop * HOP_LENGTH + N_FFT)  # (copied into x)
            frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP_LENGTH]
            power = _power(frames)
            if self.noise is not None:
                g = self.gain[np.minimum(np.arange(first, stop), len(self.gain) - 1)]
                added = (g**2 - 1)[:, None] * self.noise[None, :]
                power = np.maximum(power - self.SUBTRACT * added, self.FLOOR * power)
            block = power @ mel_filters(self.n_mels).T
            np.maximum(block, 1e-10, out=block)
            np.log10(block, out=block)
            if len(self._cache) >= self._keep:
                self._cache.pop(min(self._cache))
            self._cache[first] = block
        return block

    def frames(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start:stop`` (clipped to the recording), shape (frames, n_mels)."""
        start, stop = max(0, start), min(stop, self.n_frames)
        out = np.empty((max(0, stop - start), self.n_mels), np.float32)
        first = start - start % self.BLOCK
        for b in range(first, stop, self.BLOCK):
            block = self._block(b)
            lo, hi = max(start, b), min(stop, b + len(block))
            out[lo - start : hi - start] = block[lo - b : hi - b]
        np.maximum(out, self.ceiling - 8.0, out=out)
        out += 4.0
        out /= 4.0
        return out


def noise_power(audio: np.ndarray, mask: np.ndarray, most: int = 3000) -> np.ndarray:
    """The median power per STFT bin (``LogMel``'s frames) of up to ``most`` frames
    where ``mask`` (per hop) says there is no speech: the recording's noise floor."""
    half = N_FFT // 2
    hops = np.flatnonzero(~mask[: max(0, (len(audio) - half) // HOP_LENGTH)])
    hops = hops[hops * HOP_LENGTH >= half]
    if hops.size == 0:
        return np.zeros(half + 1, np.float32)
    hops = hops[:: max(1, hops.size // most)]
    frames = np.stack([audio[i * HOP_LENGTH - half : i * HOP_LENGTH + half] for i in hops])
    release(audio, 0, len(audio))
    return np.median(_power(frames), axis=0)


def log_mel_spectrogram(audio: np.ndarray, n_mels: int = 80, padding: int = 0) -> np.ndarray:
    """Whisper's log-mel of the whole of ``audio``: shape (n_frames, n_mels), float32."""
    mel = LogMel(audio, n_mels, padding)
    return mel.frames(0, mel.n_frames)


def pad_or_trim(mel: np.ndarray, length: int = N_FRAMES) -> np.ndarray:
    """Pad with zeros or trim along the frame axis (axis 0) to ``length`` frames."""
    if mel.shape[0] > length:
        return mel[:length]
    if mel.shape[0] < length:
        return np.pad(mel, ((0, length - mel.shape[0]), (0, 0)))
    return mel
