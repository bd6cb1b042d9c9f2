"""The one door to our C kernels (``subtitler.engine.kernels._kernels``, from ``csrc/``):
the library with every function's ctypes signature, the structs the kernels read,
and their status codes turned into exceptions.

The kernels are optional: without a C compiler at install, or with
``SUBTITLER_CPU_KERNELS=0``, ``library()`` is None and MLX runs everything.
"""

from __future__ import annotations

import ctypes
import logging
import os
from collections.abc import Iterable

P, L, I, F = ctypes.c_void_p, ctypes.c_long, ctypes.c_int, ctypes.c_float

# Every exported function: (argument types, result type).
SIGNATURES = {
    "softmax_rows_exp": ([P, L, L, L, P], None),
    "logsumexp_rows": ([P, L, L, L, P], None),
    "gelu": ([P, P, L], None),
    "layer_norm": ([P, P, L, L, P, P, F], None),
    "attention_heads": ([P, L, L, L, L, F, P, L, L, P, L, L, I, P, L, L, I, P, L, P, P, P, I], None),
    "attention_d64": ([L, L, L, F, P, L, L, P, L, L, I, P, L, L, I, P, L, P, I], I),
    "attention_d64_panel": ([I], None),
    "logits_f16_supported": ([], I),
    "logits_f16": ([P, L, L, P, L, P, I], I),
    "product_q8": ([P, P, L, L, P, L, P], I),
    "product_q8_int16": ([P, P, L, L, P, L, P], I),
    "rows_q8_int16_supported": ([], I),
    "set_simd_limit": ([I], None),
    "simd_level": ([], I),
    "quantize_rows_q8": ([P, I, P, P, P, L, L, P, P, I], None),
    "decoder_supported": ([], I),
    "decoder_step": ([P, P, L, P, I], I),
    "decoder_reorder": ([P, P, L], I),
    "floats_to_halves": ([P, P, L], I),
    "floats_to_q8_positions": ([P, L, L, L, P, P], I),
    "set_dnnl_sgemm": ([P], None),
    "q8_gemm": ([L, L, L, P, P, P, I], I),
    "q8_gemm_supported": ([], I),
    "gemm_q8_int16": ([L, L, L, P, P, P, P, P, I], I),
    "blocks_supported": ([], I),
    "blocks_forward": ([P, P, L, P, P, P, I], I),
    "encoder_stem": ([P, L, L, P, P, P, P, P, L, P, P], I),
    "dtw_path": ([P, L, L, P, P], L),
    "median7_rows": ([P, L, L, P], None),
    "lstm_sequence": ([P, P, L, L, P, P], I),
    "stft_magnitudes_fft": ([P, L, L, L, L, L, P, P, I], None),
}

# The most rows (beams, samples) a decoding step and the row kernels take (LOGITS_MAX_N in csrc/common.h).
MAX_ROWS = 8

# The kernels' return codes (STATUS_ in csrc/common.h).
OK, UNSUPPORTED, NO_MEMORY, TOO_LONG = 0, -1, -2, -3

_lib = None


def library():
    """The C kernels with their signatures set, or None (not built, or switched off)."""
    global _lib
    if _lib is None:
        _lib = False
        if os.environ.get("SUBTITLER_CPU_KERNELS", "").strip().lower() not in ("0", "off", "no", "false"):
            try:
                from subtitler.engine.kernels import _kernels

                _lib = load(_kernels.__file__)
            except (ImportError, OSError, AttributeError) as e:
                logging.getLogger(__name__).info(
                    "the C kernels are not in use (%s): MLX runs the CPU path, more slowly", e
                )
    return _lib or None


def load(path: str) -> ctypes.CDLL:
    """A build of the kernels at ``path``, with every function's signature set."""
    lib = ctypes.CDLL(path)
    for name, (args, result) in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, result
    return lib


def available() -> bool:
    """Whether the C kernels were built and are switched on."""
    return library() is not None


def check(status: int, what: str) -> None:
    """Raise for a kernel's failed ``status``; ``what`` names the kernel to the user."""
    if status == OK:
        return
    if status == NO_MEMORY:
        raise MemoryError(f"{what} could not allocate its buffers")
    if status == TOO_LONG:
        raise ValueError(f"{what}: more steps than it was set up for")
    raise RuntimeError(f"{what} does not run on this CPU")


def pointers(name: str, fields: Iterable[str]) -> type:
    """A ctypes struct of ``void *`` fields, as the kernels' per-layer structs are."""
    return type(name, (ctypes.Structure,), {"_fields_": [(f, P) for f in fields]})


def workers() -> int:
    """How many threads the kernels split their work over: the cores, or
    ``SUBTITLER_THREADS`` (a batch gives each worker process its share)."""
    chosen = os.environ.get("SUBTITLER_THREADS", "").strip()
    return max(1, min(8, int(chosen) if chosen.isdigit() else os.cpu_count() or 1))
