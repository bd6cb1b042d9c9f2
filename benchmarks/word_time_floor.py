"""How far word times move when the network's numbers move a little: the floor under
``compute_types.py``'s "word edges within 20 ms of float32's".

    python benchmarks/word_time_floor.py

Our default pipeline on ``compute_types.py``'s clips, float32, against:

- float32 by MLX instead of our C kernels (the same weights, other summation orders);
- float32 with every linear layer's weights and the token table rounded to int8, a scale
  per output row (what the int8 compute type stores), activations left in float32;
- the same with a scale per 32 weights of a row (finer than any int8 kernel here reads).

Each variant runs in a process of its own (``SUBTITLER_CPU_KERNELS`` is read once). Per
variant: the share of word edges within 20 ms of float32's, on the words both wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

VARIANTS = {
    "float32": ({}, None),
    "float32 by MLX": ({"SUBTITLER_CPU_KERNELS": "0"}, None),
    "int8-rounded weights, a scale per row": ({}, 0),
    "int8-rounded weights, a scale per 32": ({}, 32),
}


def rounded(w, group: int | None):
    """``w`` (n, k) rounded to int8 levels with a scale per row (``group`` 0) or per
    ``group`` values, back in float32."""
    import mlx.core as mx
    import numpy as np

    w = np.array(w, np.float32)
    n, k = w.shape
    g = w.reshape(n, k // (group or k), group or k)
    scale = np.abs(g).max(-1, keepdims=True) / 127
    scale[scale == 0] = 1
    return mx.array((np.round(g / scale) * scale).reshape(n, k))


def round_weights(model, group: int) -> None:
    """Every linear layer's weights and the token table of ``model`` rounded in place;
    the C backend is built again over them."""
    from subtitler.engine import backends

    for part in (model.encoder, model.decoder):
        for block in part.blocks:
            attns = [block.attn, *([block.cross_attn] if hasattr(block, "cross_attn") else [])]
            for layer in [
                block.mlp1,
                block.mlp2,
                *(x for a in attns for x in (a.query, a.key, a.value, a.out)),
            ]:
                layer.weight = rounded(layer.weight, group)
            if block.attn.fused_weights is not None:
                del block.attn._qkv
                block.attn.fuse_qkv()
    model.decoder.token_embedding.weight = rounded(model.decoder.token_embedding.weight, group)
    backends._backends.clear()


def child(variant: str, out: str) -> None:
    from subtitler.engine import runtime

    runtime.prepare()
    from compute_types import cases, run
    from real import model_for

    from subtitler import pipeline

    group = VARIANTS[variant][1]
    words, models = {}, {}
    for name, language, _, source in cases(2.5):
        m = model_for(language)
        if m not in models:
            models.clear()
            models[m] = pipeline.load_model(m, compute_type="float32")
            if group is not None:
                round_weights(models[m], group)
        words[name] = run(models[m], source, "float32")[1]
    Path(out).write_text(json.dumps(words))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    from compute_types import time_shifts

    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (variant, (env, _)) in enumerate(VARIANTS.items()):
            out = f"{tmp}/{i}.json"
            subprocess.run(
                [sys.executable, __file__, "--child", variant, out], env={**os.environ, **env}, check=True
            )
            runs[variant] = json.loads(Path(out).read_text())
    print("| against float32 | word edges within 20 ms | further | max shift s |\n|---|---|---|---|")
    base = runs.pop("float32")
    for variant, words in runs.items():
        shifts = sorted(d for name in base for d in time_shifts(base[name], words[name]))
        far = sum(d > 20 for d in shifts)
        print(
            f"| {variant} | {100 * (1 - far / len(shifts)):.1f}% | {far} of {len(shifts)} | {shifts[-1] / 1000:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
