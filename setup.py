"""Only the optional C parts; everything else is in pyproject.toml.

On Linux, ``subtitler._gemv_forward`` makes MLX's one-row matrix products
matrix-vector products, and ``subtitler.whisper._cpu_kernels`` holds the CPU kernels
``subtitler.whisper.cpu_ops`` calls: exp, GELU, layer norm, long attention and the
float16 output embedding, and the whole decoding step ``cpu_decoder`` calls (see
their sources). Both are optional: without a C
compiler the build skips them and the engine runs slower.
"""

import sys

from setuptools import Extension, setup

ext_modules = []
if sys.platform.startswith("linux"):
    ext_modules.append(Extension("subtitler._gemv_forward", ["subtitler/_gemv_forward.c"],
                                 extra_compile_args=["-O2"], libraries=["dl"], optional=True))
    ext_modules.append(Extension("subtitler.whisper._cpu_kernels", ["subtitler/whisper/_cpu_kernels.c", "subtitler/whisper/_cpu_decoder.c",
                                                                   "subtitler/whisper/_cpu_blocks.c"],
                                 depends=["subtitler/whisper/_cpu_common.h"],
                                 extra_compile_args=["-O3", "-fopenmp-simd", "-fno-trapping-math", "-pthread"],
                                 extra_link_args=["-pthread"], optional=True))

setup(ext_modules=ext_modules)
