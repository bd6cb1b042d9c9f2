"""Extract Silero VAD's weights from its ONNX file into subtitler/engine/assets/silero_vad.npz.

    pip install onnx "silero-vad==6.1.0" --no-deps   # the ONNX files ship in the silero-vad wheel
    python packaging/extract_silero_vad.py [path/to/silero_vad_16k_op15.onnx]

6.1.0 ships v6.0's weights (those faster-whisper 1.2.1 runs). 6.2's were measured and not
taken: on quiet real speech they hear less of it (benchmarks/README.md, twentieth pass).

Run once by a developer; the product reads the .npz with NumPy (subtitler/engine/vad.py)
and needs neither onnx, onnxruntime nor torch. Silero VAD is MIT-licensed (Silero Team);
its licence is in subtitler/engine/assets/LICENSE.silero.
"""

import sys
from pathlib import Path

import numpy as np


def main() -> int:
    import onnx
    from onnx import numpy_helper

    if len(sys.argv) > 1:
        src = Path(sys.argv[1])
    else:
        import importlib.util

        spec = importlib.util.find_spec("silero_vad")
        src = Path(spec.submodule_search_locations[0]) / "data" / "silero_vad_16k_op15.onnx"
    model = onnx.load(str(src))
    weights = {
        init.name.replace("model.", "").replace(".", "_"): numpy_helper.to_array(init).astype(np.float32)
        for init in model.graph.initializer
    }
    out = Path(__file__).resolve().parent.parent / "subtitler" / "engine" / "assets" / "silero_vad.npz"
    np.savez(out, **weights)
    print(f"{src} -> {out}: {', '.join(f'{k} {v.shape}' for k, v in weights.items())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
