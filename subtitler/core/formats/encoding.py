"""Bytes on disk to text, and text to bytes on disk.

Reading: a BOM first (UTF-8, UTF-16, UTF-32), then strict UTF-8, then charset
detection (``charset-normalizer``) over the legacy encodings subtitles come in.
When detection is not confident, the file is refused with the likely encodings
named, rather than decoded into mojibake; ``encoding=`` overrides all of it.
Writing is UTF-8 (a BOM on request, for old players), through a temporary file
renamed over the target, so a failure never leaves a damaged file.
"""

from __future__ import annotations

import codecs
import os
import secrets
import stat
from pathlib import Path
from typing import Optional

from subtitler.errors import EncodingUnclear, SubtitleFileError

# What detection chooses from: Western and Central European, Cyrillic, Greek, Arabic,
# Simplified and Traditional Chinese, Japanese and Korean legacy encodings.
CANDIDATES = (
    "cp1252",
    "iso8859_15",
    "cp1250",
    "iso8859_2",
    "cp1251",
    "koi8_r",
    "iso8859_5",
    "cp1253",
    "iso8859_7",
    "cp1254",
    "cp1256",
    "iso8859_6",
    "cp1255",
    "gb18030",
    "big5",
    "cp932",
    "euc_jp",
    "euc_kr",
)
MAX_CHAOS = 0.2  # charset-normalizer's "mess" of the best reading, at most
MARGIN = 0.02  # how clearly the best reading must beat a different runner-up

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect(data: bytes) -> str:
    """The encoding ``data`` is in; ``SubtitleFileError`` when it cannot be told."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    found = [m for m in from_bytes(data, cp_isolation=list(CANDIDATES)) if m.chaos <= MAX_CHAOS]
    if not found:
        raise EncodingUnclear(
            "The text encoding cannot be told: it reads as none of the usual subtitle "
            "encodings. Give it with --encoding (for example cp1251, gb18030, cp932).",
            CANDIDATES,
        )
    best = found[0]
    for other in found[1:]:
        if str(other) == str(best):
            continue  # another name for the same reading
        if best.chaos + MARGIN <= other.chaos or best.coherence >= other.coherence + MARGIN:
            break
        names = tuple(m.encoding for m in found[:4])
        raise EncodingUnclear(
            f"The text encoding is not clear: it may be {', '.join(names)}. "
            f"Give it with --encoding (or pick it in the import dialog).",
            names,
        )
    return best.encoding


def decode_text(data: bytes, encoding: Optional[str] = None) -> str:
    """Bytes to text with "\\n" line ends: ``encoding`` when given, else detected."""
    name = encoding or detect(data)
    try:
        text = data.decode(name)
    except LookupError as e:
        raise SubtitleFileError(f"Unknown text encoding '{encoding}'.") from e
    except UnicodeDecodeError as e:
        raise SubtitleFileError(f"The file is not valid {name} (byte {e.start}).") from e
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(path, encoding: Optional[str] = None) -> str:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as e:
        raise SubtitleFileError(f"The file {path} does not exist.") from e
    except OSError as e:
        raise SubtitleFileError(f"Cannot read {path}: {e.strerror or e}.") from e
    try:
        return decode_text(data, encoding)
    except SubtitleFileError as e:
        e.args = (f"{Path(path).name}: {e}",)  # the same error, naming the file
        raise


def temporary_beside(path, suffix: str = ".tmp") -> str:
    """A new empty file beside ``path``, to be written and renamed over it, with the mode
    ``path`` has, or for a new file the one the umask gives, as any program's (mkstemp's
    0600 made every export readable by its owner alone). Its name ends with ``suffix``."""
    path = Path(path)
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = None
    folder = path.parent if str(path.parent) else Path(".")
    for _ in range(100):
        tmp = folder / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        if mode is not None:
            os.chmod(tmp, mode)
        return str(tmp)
    raise FileExistsError(f"no free temporary name beside {path}")


def atomic_write(path, data: str | bytes, bom: bool = False) -> None:
    """Write to a temporary file beside ``path`` and rename it over, so a failure
    never leaves a half-written or damaged file. Text is written as UTF-8."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if bom and isinstance(data, str):
        raw = codecs.BOM_UTF8 + raw
    try:
        tmp = temporary_beside(path)
    except OSError as e:
        raise SubtitleFileError(f"Cannot write {path}: {e.strerror or e}.") from e
    try:
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise SubtitleFileError(f"Cannot write {path}: {e.strerror or e}.") from e
