"""Only the optional C parts; everything else is in pyproject.toml.

On Linux, ``subtitler.engine.kernels._gemv_forward`` makes MLX's one-row matrix products
matrix-vector products. On Linux and macOS, ``subtitler.engine.kernels._kernels`` holds the
CPU kernels (see csrc/): the speech detector's STFT and LSTM, word timing's DTW and
median filter, and, on x86, the encoder's and decoder's blocks, exp, GELU, layer norm,
long attention and the float16 output embedding. Other CPUs (Apple silicon, ARM Linux)
get the plain C paths. Both are optional: without a C compiler the build skips them
and the engine runs slower.
"""

import sys

from setuptools import Extension, setup

CSRC = "subtitler/engine/kernels/csrc"  # all the C sources
ext_modules = []
if sys.platform.startswith("linux"):
    ext_modules.append(
        Extension(
            "subtitler.engine.kernels._gemv_forward",
            ["subtitler/engine/kernels/csrc/gemv_forward.c"],
            extra_compile_args=["-O2"],
            libraries=["dl"],
            optional=True,
        )
    )
if sys.platform.startswith("linux") or sys.platform == "darwin":
    ext_modules.append(
        Extension(
            "subtitler.engine.kernels._kernels",
            [f"{CSRC}/kernels.c", f"{CSRC}/decoder.c", f"{CSRC}/blocks.c"],
            depends=[f"{CSRC}/common.h"],
            extra_compile_args=["-O3", "-fopenmp-simd", "-fno-trapping-math", "-fno-math-errno", "-pthread"],
            extra_link_args=["-pthread"],
            optional=True,
        )
    )

setup(ext_modules=ext_modules)
