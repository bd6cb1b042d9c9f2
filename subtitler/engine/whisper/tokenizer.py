"""Whisper's tokenizer: tiktoken BPE over the shipped vocabularies plus the special
tokens (languages, tasks, no-timestamps, and timestamps in 0.02 s steps)."""

from __future__ import annotations

import binascii
import string
from functools import cached_property, lru_cache
from pathlib import Path

import tiktoken

from subtitler.engine.audio import TIME_PRECISION
from subtitler.engine.whisper.languages import LANGUAGES, TO_LANGUAGE_CODE, language_code  # noqa: F401

ASSETS = Path(__file__).resolve().parent.parent / "assets"

_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


@lru_cache(maxsize=4)
def _encoding(name: str, num_languages: int) -> tiktoken.Encoding:
    # "token rank" lines: one split and binascii's decoder mapped over the tokens (no
    # Python loop, nor base64's wrapper): 50k lines in 22-25 ms, 35 line by line
    fields = (ASSETS / f"{name}.tiktoken").read_bytes().split()
    ranks = dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2])))
    specials = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *[f"<|{lang}|>" for lang in list(LANGUAGES)[:num_languages]],
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
        *[f"<|{i * TIME_PRECISION:.2f}|>" for i in range(1501)],
    ]
    n = len(ranks)
    special_tokens = {tok: n + i for i, tok in enumerate(specials)}
    return tiktoken.Encoding(
        name=f"{name}-{num_languages}",
        explicit_n_vocab=n + len(specials),
        pat_str=_PATTERN,
        mergeable_ranks=ranks,
        special_tokens=special_tokens,
    )


class Tokenizer:
    def __init__(
        self,
        multilingual: bool,
        num_languages: int = 99,
        language: str | None = None,
        task: str | None = None,
    ):
        self.multilingual = multilingual
        self.num_languages = num_languages
        self.encoding = _encoding("multilingual" if multilingual else "gpt2", num_languages)
        if not multilingual:
            language, task = None, None
        elif language is None and task is not None:
            language = None
        self.language = language
        self.task = task
        sp = self.encoding._special_tokens
        self.special_tokens = sp
        self.eot = sp["<|endoftext|>"]
        self.sot = sp["<|startoftranscript|>"]
        self.translate = sp["<|translate|>"]
        self.transcribe = sp["<|transcribe|>"]
        self.sot_lm = sp["<|startoflm|>"]
        self.sot_prev = sp["<|startofprev|>"]
        self.no_speech = sp["<|nospeech|>"]
        self.no_timestamps = sp["<|notimestamps|>"]
        self.timestamp_begin = sp["<|0.00|>"]

    def with_language(self, language: str | None, task: str | None = None) -> Tokenizer:
        return Tokenizer(self.multilingual, self.num_languages, language, task or self.task)

    @property
    def sot_sequence(self) -> tuple[int, ...]:
        seq = [self.sot]
        if self.language is not None:
            seq.append(self.language_token(self.language))
        if self.task is not None:
            seq.append(self.transcribe if self.task == "transcribe" else self.translate)
        return tuple(seq)

    def language_token(self, language: str) -> int:
        tok = self.special_tokens.get(f"<|{language}|>")
        if tok is None:
            raise KeyError(f"Language {language} is not supported by this model.")
        return tok

    @cached_property
    def all_language_tokens(self) -> tuple[int, ...]:
        return tuple(self.special_tokens[f"<|{c}|>"] for c in list(LANGUAGES)[: self.num_languages])

    @cached_property
    def all_language_codes(self) -> tuple[str, ...]:
        return tuple(list(LANGUAGES)[: self.num_languages])

    def encode(self, text: str) -> list[int]:
        """Text to BPE tokens; special-token markup in the text is kept as plain text
        (and tiktoken skips compiling its special-token regex)."""
        return self.encoding.encode_ordinary(text)

    def decode(self, tokens) -> str:
        return self.encoding.decode([t for t in tokens if t < self.eot])

    def decode_with_timestamps(self, tokens) -> str:
        parts, text = [], []
        for t in tokens:
            if t >= self.timestamp_begin:
                parts.append(self.encoding.decode(text))
                text = []
                parts.append(f"<|{(t - self.timestamp_begin) * TIME_PRECISION:.2f}|>")
            elif t < self.eot:
                text.append(t)
        parts.append(self.encoding.decode(text))
        return "".join(parts)

    @cached_property
    def non_speech_tokens(self) -> tuple[int, ...]:
        """Tokens for symbols that are not speech (openai/whisper's list)."""
        symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
        symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
        misc = set("♩♪♫♬♭♮♯")
        result = {self.encode(" -")[0], self.encode(" '")[0]}
        for symbol in symbols + list(misc):
            for tokens in (self.encode(symbol), self.encode(" " + symbol)):
                if len(tokens) == 1 or symbol in misc:
                    result.add(tokens[0])
        return tuple(sorted(result))

    def split_to_word_tokens(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        """Group text tokens into words (by spaces, or by characters for CJK-like languages)."""
        if self.language in {"zh", "ja", "th", "lo", "my", "yue"}:
            return self._split_unicode(tokens)
        words, word_tokens = self._split_unicode(tokens)
        out_words, out_tokens = [], []
        for sub, toks in zip(words, word_tokens):
            special = toks[0] >= self.eot
            with_space = sub.startswith(" ")
            punct = sub.strip() in string.punctuation
            if special or with_space or punct or not out_words:
                out_words.append(sub)
                out_tokens.append(list(toks))
            else:
                out_words[-1] += sub
                out_tokens[-1].extend(toks)
        return out_words, out_tokens

    def _split_unicode(self, tokens):
        full = self.decode_with_timestamps(tokens)
        words, word_tokens, current = [], [], []
        pos = 0
        for t in tokens:
            current.append(t)
            decoded = self.decode_with_timestamps(current)
            if "\ufffd" not in decoded or full[pos + decoded.index("\ufffd")] == "\ufffd":
                words.append(decoded)
                word_tokens.append(current)
                current = []
                pos += len(decoded)
        return words, word_tokens


def get_tokenizer(
    multilingual: bool, num_languages: int = 99, language: str | None = None, task: str | None = "transcribe"
) -> Tokenizer:
    language = language_code(language)
    if multilingual and task is None:
        task = "transcribe"
    return Tokenizer(multilingual, num_languages, language, task)
