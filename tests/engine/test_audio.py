import numpy as np
import pytest
from conftest import JFK

from subtitler.engine import audio
from subtitler.errors import MediaError


def test_probe_and_load_jfk():
    info = audio.probe(str(JFK))
    assert info.has_audio and not info.has_video
    assert 10.9 < info.duration < 11.1
    seen = []
    samples = audio.load_audio(str(JFK), progress=seen.append)
    assert samples.dtype == np.float32
    assert abs(len(samples) / audio.SAMPLE_RATE - 11.0) < 0.05
    assert 0.05 < np.abs(samples).max() <= 1.0
    assert seen[-1] == 1.0


def test_audio_from_video_track(media_dir):
    info = audio.probe(str(media_dir / "jfk.mp4"))
    assert info.has_audio and info.has_video
    a = audio.load_audio(str(media_dir / "jfk.mp4"))
    b = audio.load_audio(str(JFK))
    n = min(len(a), len(b))
    assert abs(len(a) - len(b)) < 0.1 * audio.SAMPLE_RATE
    # AAC is lossy and adds a small delay; the envelopes still line up.
    env = lambda x: np.abs(x[: n - n % 1600]).reshape(-1, 1600).mean(1)
    assert np.corrcoef(env(a), env(b))[0, 1] > 0.95


def test_mel_matches_faster_whisper():
    from faster_whisper.feature_extractor import FeatureExtractor

    samples = audio.load_audio(str(JFK))
    ours = audio.log_mel_spectrogram(samples, 80, padding=audio.N_SAMPLES)
    ref = FeatureExtractor(feature_size=80)(samples, padding=audio.N_SAMPLES)
    n = min(ref.shape[1], ours.shape[0])
    assert abs(ref.shape[1] - ours.shape[0]) <= 1
    assert np.abs(ours[:n] - ref.T[:n]).max() < 1e-3


def test_mel_a_window_at_a_time_is_the_whole_files(monkeypatch):
    """Windows computed on demand (long recordings keep no whole log-mel) hold the very
    values of the whole file's log-mel, whichever window asks first; a gain of 1 is no
    gain, and a gain is the same as scaling the samples."""
    from subtitler.engine.audio import HOP_LENGTH, LogMel

    samples = np.concatenate([audio.load_audio(str(JFK))] * 3)  # 33 s: three blocks
    whole = audio.log_mel_spectrogram(samples, 80, padding=HOP_LENGTH)
    monkeypatch.setattr(LogMel, "KEEP_FRAMES", 1000)  # as for a recording of hours
    mel = LogMel(samples, 80, padding=HOP_LENGTH)
    assert mel.n_frames == whole.shape[0] and len(mel._cache) <= 2
    for start in (3000, 0, 1234, 8000, 4095):
        assert np.array_equal(mel.frames(start, start + 3000), whole[start : start + 3000])
    ones = LogMel(samples, 80, padding=HOP_LENGTH, gain=np.ones(len(samples) // HOP_LENGTH, np.float32))
    assert np.array_equal(ones.frames(0, 3000), whole[:3000])
    half = LogMel(samples, 80, padding=HOP_LENGTH, gain=np.full(len(samples) // HOP_LENGTH, 0.5, np.float32))
    assert np.allclose(
        half.frames(0, 3000), audio.log_mel_spectrogram(samples * 0.5, 80, HOP_LENGTH)[:3000], atol=1e-6
    )


def test_noise_a_gain_adds_is_taken_off_again():
    """Raising a stretch by 20 dB raises its noise too; with the recording's noise floor
    given, most of that added noise is taken off the raised frames' spectrum again."""
    from subtitler.engine.audio import HOP_LENGTH, LogMel, noise_power

    noise = np.random.default_rng(0).normal(0, 0.001, 16000 * 10).astype(np.float32)
    hops = len(noise) // HOP_LENGTH
    gain = np.ones(hops, np.float32)
    gain[300:700] = 10.0  # 3 to 7 s up by 20 dB
    floor = noise_power(noise, np.zeros(hops, bool))
    assert floor.shape == (201,) and floor[5:195].min() > 0

    def rise(mel):  # log10 units: 1.0 is 10 dB
        frames = mel.frames(0, mel.n_frames) * 4  # undo the /4 of the scaling
        return frames[400:600].mean() - frames[50:250].mean()

    assert 1.9 < rise(LogMel(noise, 80, gain=gain)) < 2.1  # 20 dB
    assert (
        rise(LogMel(noise, 80, gain=gain, noise=floor)) < 1.2
    )  # under 12 dB: most of the added power is gone


def test_cancel_stops_decoding():
    from subtitler.errors import Cancelled

    with pytest.raises(Cancelled):
        audio.load_audio(str(JFK), cancel=lambda: True)


@pytest.mark.parametrize(
    "name,message",
    [
        ("missing.mp4", "does not exist"),
        ("notes.mp4", "is not a media file"),
        ("silent_video.mp4", "has no audio track"),
        ("empty.wav", "is empty"),
        ("truncated.mp4", "is not a media file"),
    ],
)
def test_bad_inputs_raise_one_sentence(media_dir, name, message):
    with pytest.raises(MediaError) as e:
        audio.load_audio(str(media_dir / name))
    assert message in str(e.value)
    assert "\n" not in str(e.value) and "Traceback" not in str(e.value)


def test_folder_and_unreadable_paths(media_dir, tmp_path):
    with pytest.raises(MediaError, match="is a folder"):
        audio.probe(str(media_dir))
    with pytest.raises(MediaError, match="does not exist"):
        audio.probe(str(media_dir / "notes.mp4" / "inside.wav"))


def test_audio_longer_than_its_header_is_read_whole(tmp_path, ffmpeg):
    """A header that speaks of less audio than the file holds (files joined end to end,
    MP3s without a proper header): the buffer sized from it grows in place, and every
    sample comes back."""
    import subprocess

    part = tmp_path / "part.wav"
    subprocess.run([ffmpeg, "-v", "error", "-i", str(JFK), "-ac", "1", "-ar", "16000", str(part)], check=True)
    joined = tmp_path / "joined.flac"
    subprocess.run(
        [
            ffmpeg,
            "-v",
            "error",
            "-i",
            str(part),
            "-i",
            str(part),
            "-i",
            str(part),
            "-filter_complex",
            "concat=n=3:v=0:a=1",
            str(joined),
        ],
        check=True,
    )
    one = audio.load_audio(str(part))
    short_header = audio.MediaInfo(str(joined), len(one) / 16000, True, False)  # says one part, holds three
    blocks = []  # as they arrived: the buffer grew (and may have moved) behind them
    whole = audio.load_audio(str(joined), info=short_header, on_block=lambda b: blocks.append(b.copy()))
    assert abs(len(whole) - 3 * len(one)) < 16000 * 0.05
    assert np.array_equal(np.concatenate(blocks), whole)
    assert np.allclose(whole[-len(one) :], one, atol=1e-3)  # the last part, sample for sample


def test_long_audio_is_mapped_from_a_file_with_the_same_samples(tmp_path, ffmpeg, monkeypatch):
    """Past ``LONG_SECONDS`` the samples go to a file as they arrive and come back mapped,
    the same values as in memory, whether the header says so up front or falls short (the
    samples read so far move to the file); ``release`` lets mapped pages go and they read
    back the same."""
    import subprocess

    joined = tmp_path / "joined.flac"
    subprocess.run(
        [ffmpeg, "-v", "error", *sum((["-i", str(JFK)] for _ in range(3)), []), "-filter_complex",
         "concat=n=3:v=0:a=1", "-ac", "1", "-ar", "16000", str(joined)],
        check=True,
    )  # fmt: skip
    in_memory = audio.load_audio(str(joined))
    assert not isinstance(in_memory, np.memmap)
    monkeypatch.setattr(audio, "LONG_SECONDS", 5)
    monkeypatch.setenv("SUBTITLER_CACHE_DIR", str(tmp_path / "cache"))  # on disk, not /tmp (often memory)
    assert audio.spill_dir() == str(tmp_path / "cache")
    seen = {"mapped": [], "switched": []}  # each block as it arrived (on_block, copied)
    mapped = audio.load_audio(str(joined), on_block=lambda b: seen["mapped"].append(b.copy()))
    short_header = audio.MediaInfo(str(joined), 3.0, True, False)  # says 3 s: starts in memory
    switched = audio.load_audio(
        str(joined), info=short_header, on_block=lambda b: seen["switched"].append(b.copy())
    )
    for got, blocks in ((mapped, seen["mapped"]), (switched, seen["switched"])):
        assert isinstance(got, np.memmap) and np.array_equal(np.asarray(got), in_memory)
        assert np.array_equal(np.concatenate(blocks), in_memory)

    n = len(in_memory) // 160  # a waveform's outline, taken a block at a time
    assert np.array_equal(audio.peaks(mapped, 160), np.abs(in_memory[: n * 160]).reshape(n, 160).max(axis=1))
    before = np.asarray(mapped).copy()  # every page touched
    audio.release(mapped, 0, len(mapped))
    audio.release(np.asarray(mapped)[1000:], 5000, 90_000)  # a view: found through its base
    assert np.array_equal(np.asarray(mapped), before)  # read back the same after letting them go


def test_release_gives_back_the_memory_of_mapped_samples(tmp_path):
    """A 200 MB mapped recording read through takes its size in memory; ``release``
    behind the pass gives it back (what keeps a 3-hour file near a 1-hour one)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from subtitler.engine import audio\n"
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 / 2**20\n"
        "f = open(sys.argv[1], 'w+b'); f.truncate(200 << 20)\n"
        "x = np.memmap(f, np.float32, 'r')\n"
        "base = rss(); float(x.sum()); touched = rss()\n"
        "audio.release(x, 0, len(x)); print(round(touched - base), round(rss() - base))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "samples.f32")], capture_output=True, text=True
    )
    touched, released = map(int, out.stdout.split())
    assert touched > 150 and released < 20, (touched, released)
