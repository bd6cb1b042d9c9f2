"""Our default pipeline with the Silero weights we ship, beside the same pipeline with others.

    python benchmarks/vad_weights.py --weights other.npz [--groups real conditions quiet]

Make ``other.npz`` from another silero-vad release with ``packaging/extract_silero_vad.py``
(for example ``pip download "silero-vad==6.2.3" --no-deps``, unzip, and pass the wheel's
``silero_vad_16k_op15.onnx``). The speech detector decides which windows are decoded and
which segments the speech guard drops, so its weights move word errors on quiet speech.
Groups, each a total of word errors and of cue seconds outside the true speech (0.3 s grace):

- ``real``: ``real.py``'s clips with a reference;
- ``conditions``: ``real_conditions.py``'s cases;
- ``quiet``: 48 clips of a real sentence 34-50 dB under the readers around it: a loud
  sentence, 6 s without speech (a laugh in half of them), the quiet sentence, a loud one,
  over room tone alone (at -50 to -42 dBFS) or with a music bed (at -44 to -36, the bed
  at -40).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_cases import SR, Case, Layout, level, ref_text, room_tone, voice  # noqa: E402

VOICES = ["read_en", "audiobook_en", "audiobook2_en", "three_speakers_en"]


def quiet_between_loud(quiet: str, dbfs: int, bed: str, laugh: bool, seed: int) -> Case:
    """A loud sentence, 6 s of the bed alone (with a laugh at -30 if ``laugh``), ``quiet``'s
    sentence at ``dbfs``, another loud one; over room tone, or room tone and music at -40."""
    from vad_clips import laughter, music

    loud = [v for v in VOICES if v != quiet][:2]
    lay = Layout(start=1.0)
    lay.put(level(voice(loud[0]), -18), gap_after=0.8)
    lay.put(np.zeros(6 * SR, np.float32), speech=False)
    lay.put(level(voice(quiet), dbfs), gap_after=0.8)
    lay.put(level(voice(loud[1]), -18), gap_after=0.5)
    seconds = lay.t / SR + 3.0
    under = room_tone(seconds, seed=seed)
    if bed == "music":
        under = under + level(music(seconds, seed=seed + 10), -40)
    if laugh:
        burst = level(laughter(10, seed=seed), -30)
        at = int((1.0 + len(voice(loud[0])) / SR + 2.0) * SR)
        under[at : at + len(burst)] += burst[: len(under) - at]
    ref = " ".join(ref_text(n) for n in [loud[0], quiet, loud[1]])
    name = f"{quiet}_{-dbfs}_{bed}{'_laugh' if laugh else ''}"
    return Case(name, "en", lay.mix(under, tail=3.0), ref, lay.spans)


def quiet_cases() -> list[Case]:
    cases, k = [], 0
    for quiet in VOICES:
        for bed, levels in (("music", (-44, -40, -36)), ("room", (-50, -46, -42))):
            for dbfs in levels:
                for laugh in (False, True):
                    k += 1
                    cases.append(quiet_between_loud(quiet, dbfs, bed, laugh, seed=k))
    return cases


def use_weights(path: Path | None) -> None:
    """Silero's weights from ``path`` from now on (None: the ones we ship)."""
    from subtitler.engine import silero

    silero.WEIGHTS = path or Path(silero.__file__).resolve().parent / "assets" / "silero_vad.npz"
    for cached in (silero._weights, silero._encoder, silero._packed_recurrent):
        cached.cache_clear()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True, type=Path, help="the other weights (.npz)")
    ap.add_argument("--groups", nargs="*", default=["real", "conditions", "quiet"])
    args = ap.parse_args()
    from subtitler.engine import runtime

    runtime.prepare()
    import real
    import real_conditions

    groups = {
        "real": lambda: [c for c in real.realspeech_clips() + real.all_cases() if c.reference],
        "conditions": real_conditions.all_conditions,
        "quiet": quiet_cases,
    }
    sets = [("shipped", None), (args.weights.name, args.weights)]
    print("| group | clip | " + " | ".join(f"{name}: errors, s outside" for name, _ in sets) + " |")
    print("|---|---|" + "---|" * len(sets))
    for group in args.groups:
        totals = {name: [0, 0, 0.0] for name, _ in sets}
        for case in groups[group]():
            cells = []
            for name, path in sets:
                use_weights(path)
                row = real.measure(case, real.ours(real.model_for(case.language), case.samples))
                outside = row.get("outside_s", 0.0)
                totals[name][0] += row["errors"]
                totals[name][1] += row["ref_words"]
                totals[name][2] += outside
                cells.append(f"{row['errors']}, {outside:.1f}")
            print(f"| {group} | {case.name} | " + " | ".join(cells) + " |", flush=True)
        cells = [f"**{e}/{n}**, {s:.1f}" for e, n, s in totals.values()]
        print(f"| {group} | total | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
