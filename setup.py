"""Only the optional C part; everything else is in pyproject.toml.

On Linux, ``subtitler._gemv_forward`` (see its source) makes MLX's one-row matrix
products matrix-vector products. It is optional: without a C compiler the build
skips it and the engine runs the products through the BLAS's sgemm, slower.
"""

import sys

from setuptools import Extension, setup

ext_modules = []
if sys.platform.startswith("linux"):
    ext_modules.append(Extension("subtitler._gemv_forward", ["subtitler/_gemv_forward.c"],
                                 extra_compile_args=["-O2"], libraries=["dl"], optional=True))

setup(ext_modules=ext_modules)
