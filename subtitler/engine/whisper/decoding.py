"""Decode one 30-second window: greedy, temperature sampling (best-of-N) or beam search.

Logit rules (suppressed tokens, blank suppression, Whisper's timestamp rules) are
masks over the vocabulary axis computed for all sequences at once; nothing loops
over tokens in Python. The only host transfers per step are the chosen tokens'
completion flag (greedy/sampling) or the top beam+1 candidates per beam (beam
search).

The prompt and the steps run on the model's backend (``backend``): MLX, or our C
kernels on x86 CPUs, whose logits are host (NumPy) arrays: the rules and the choice
of tokens then run on them with NumPy, the same code over the other array module
(``xp``), instead of copying the logits into MLX for a dozen small operations each
step.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Union

import mlx.core as mx
import numpy as np

from subtitler.engine.audio import TIME_PRECISION
from subtitler.engine.kernels import ops as kernel_ops
from subtitler.engine.whisper.backend import MlxBackend
from subtitler.engine.whisper.model import Whisper
from subtitler.engine.whisper.tokenizer import Tokenizer
from subtitler.errors import Cancelled

NEG_INF = float("-inf")


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


@dataclass(frozen=True)
class DecodingOptions:
    task: str = "transcribe"
    language: Optional[str] = None
    temperature: float = 0.0
    sample_len: Optional[int] = None
    best_of: Optional[int] = None  # independent samples when temperature > 0
    seed: int = 0  # the draws when temperature > 0 come from this seed alone
    beam_size: Optional[int] = None  # beams when temperature == 0
    patience: Optional[float] = None
    length_penalty: Optional[float] = None
    prompt: Optional[Union[str, Sequence[int]]] = None  # previous text, for context
    prefix: Optional[Union[str, Sequence[int]]] = None  # forced start of this window
    suppress_tokens: Optional[Union[str, Sequence[int]]] = "-1"
    suppress_blank: bool = True
    without_timestamps: bool = False
    max_initial_timestamp: Optional[float] = 1.0


@dataclass
class DecodingResult:
    language: str
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    avg_logprob: float = float("nan")
    sum_logprob: float = float("nan")
    no_speech_prob: float = float("nan")
    temperature: float = float("nan")
    compression_ratio: float = float("nan")
    language_probs: Optional[dict[str, float]] = None
    token_logprobs: Optional[list[float]] = None  # each token's log-probability (greedy and sampling)


def detect_language(
    model: Whisper, cross_kv, tokenizer: Tokenizer, backend=None
) -> tuple[str, dict[str, float]]:
    """Most likely language of the window, and the distribution over languages (by
    ``backend``'s prompt: the model's own network where none is given)."""
    logits, _ = (backend or MlxBackend(model)).prompt([tokenizer.sot], cross_kv, [0])
    lang_ids = mx.array(tokenizer.all_language_tokens)
    probs = mx.softmax(mx.take(mx.array(logits)[0, -1], lang_ids), axis=-1)
    p = np.array(probs)
    codes = tokenizer.all_language_codes
    return codes[int(p.argmax())], {c: float(v) for c, v in zip(codes, p)}


def _xp(a):
    """The array module of ``a``: NumPy for host arrays, else MLX."""
    return np if isinstance(a, np.ndarray) else mx


def top_indices(x: mx.array, k: int, chunk: int = 64) -> mx.array:
    """Indices of the k largest values of each row of ``x`` (n, V), in no order.

    The rows are cut into chunks of ``chunk``; the k chunks with the largest maxima
    hold the k largest values (any chunk outside them has k chunk maxima above its
    best value), so the search runs over k * chunk candidates instead of V.
    """
    xp = _xp(x)
    n, size = x.shape
    if size <= 4 * k * chunk:
        return xp.argpartition(-x, k - 1, axis=-1)[:, :k]
    pad = -size % chunk
    if pad:
        x = xp.concatenate([x, xp.full((n, pad), NEG_INF, dtype=x.dtype)], axis=1)
    chunks = x.reshape(n, -1, chunk)
    best = xp.argpartition(-xp.max(chunks, axis=-1), k - 1, axis=-1)[:, :k]  # (n, k)
    cand = xp.take_along_axis(chunks, best[:, :, None], axis=1).reshape(n, k * chunk)
    pick = xp.argpartition(-cand, k - 1, axis=-1)[:, :k]
    return xp.take_along_axis(best, pick // chunk, axis=1) * chunk + pick % chunk


class TimestampState(NamedTuple):
    """What Whisper's timestamp rules need from the tokens sampled so far, one (n, 1)
    array per field: carried from step to step instead of rescanning the history."""

    last: mx.array  # the last token is a timestamp
    penult: mx.array  # so is the one before it (True while there are fewer than two)
    max_ts: mx.array  # the largest timestamp token so far, -1 before the first

    def take(self, rows: mx.array) -> TimestampState:
        """The state of the sequences ``rows`` (beam search reorders its beams)."""
        return TimestampState(*(_xp(a).take(a, rows, 0) for a in self))


class LogitRules:
    """Whisper's logit filters as array operations over (n_sequences, vocab), in the
    array module ``xp`` (MLX, or NumPy for host logits)."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        n_vocab: int,
        sample_begin: int,
        suppress: Sequence[int],
        suppress_blank: bool,
        timestamps: bool,
        max_initial_timestamp_index: Optional[int],
        xp=mx,
    ):
        self.xp = xp
        self.tb = tokenizer.timestamp_begin
        self.eot = tokenizer.eot
        self.sample_begin = sample_begin
        self.timestamps = timestamps
        self.max_initial = max_initial_timestamp_index
        base = np.zeros(n_vocab, np.float32)
        base[list(suppress)] = NEG_INF
        if timestamps:
            base[tokenizer.no_timestamps] = NEG_INF
        self.base = xp.array(base)
        first = base.copy()
        if suppress_blank:
            first[tokenizer.encode(" ") + [tokenizer.eot]] = NEG_INF
        if timestamps:
            first[: self.tb] = NEG_INF  # the first token must be a timestamp
            if max_initial_timestamp_index is not None:
                first[self.tb + max_initial_timestamp_index + 1 :] = NEG_INF
        self.first = xp.array(first)
        self.ts_ids = xp.arange(self.tb, n_vocab)

    def start(self, n: int) -> TimestampState:
        """The state before the first sampled token."""
        xp = self.xp
        return TimestampState(
            xp.ones((n, 1), dtype=xp.bool_),
            xp.ones((n, 1), dtype=xp.bool_),
            xp.full((n, 1), -1, dtype=xp.int32),
        )

    def advance(self, state: Optional[TimestampState], tokens: mx.array) -> TimestampState:
        """The state once ``tokens`` (n,) are appended (``state`` None: the first ones)."""
        if state is None:
            state = self.start(tokens.shape[0])
        xp = self.xp
        tokens = tokens.astype(xp.int32)[:, None]
        is_ts = tokens >= self.tb
        return TimestampState(is_ts, state.last, xp.maximum(state.max_ts, xp.where(is_ts, tokens, -1)))

    def __call__(self, logits: mx.array, state: Optional[TimestampState]) -> mx.array:
        """The masked logits. ``state``: from ``advance``, or None for the first token.

        The text tokens' bans are (n, 1) flags applied in one pass as the result is put
        together; the rules' other arrays span the timestamps alone (a step's rules read
        and write the vocabulary four times, not eight)."""
        xp = self.xp
        x = logits + (self.first if state is None else self.base)
        if not self.timestamps:
            return x
        tb, eot = self.tb, self.eot
        ts, lone = x[:, tb:], None
        if state is not None:
            last, penult, max_ts = state
            # Timestamps come in pairs: after a pair, text; after a lone one, another timestamp or EOT.
            lone = last & ~penult
            # Timestamps never decrease, and a segment has nonzero length.
            floor = xp.where(lone, max_ts, max_ts + 1)
            ts = xp.where((last & penult) | ((max_ts >= 0) & (self.ts_ids < floor)), NEG_INF, ts)
        # If timestamps together outweigh the best text token allowed, a timestamp must
        # follow. (Both sides are log-probabilities under one normaliser, which cancels.)
        after_eot = xp.max(x[:, eot:tb], axis=-1, keepdims=True)
        best_text = xp.maximum(xp.max(x[:, :eot], axis=-1, keepdims=True), after_eot)
        if lone is not None:
            best_text = xp.where(lone, after_eot, best_text)
        force_ts = kernel_ops.logsumexp(ts) > best_text
        before_eot_banned = force_ts if lone is None else force_ts | lone
        if xp is np:  # x is this call's own array and the flags are on the host: the bans go in place
            x[:, tb:] = ts
            x[before_eot_banned[:, 0], :eot] = NEG_INF
            x[force_ts[:, 0], eot:tb] = NEG_INF
            return x
        return xp.concatenate(
            [
                xp.where(before_eot_banned, NEG_INF, x[:, :eot]),
                xp.where(force_ts, NEG_INF, x[:, eot:tb]),
                ts,
            ],
            axis=1,
        )


def _categorical(logits, temperature: float, key: mx.array):
    """A token per row drawn from softmax(logits / temperature), by MLX's generator
    from ``key`` (one key gives the same draws on either path)."""
    drawn = mx.random.categorical(mx.array(logits) / temperature, key=key)
    return np.array(drawn) if isinstance(logits, np.ndarray) else drawn


def _prefetch(*arrays) -> None:
    """Start evaluating MLX arrays (host arrays are ready)."""
    if isinstance(arrays[0], mx.array):
        mx.async_eval(*arrays)


class DecodingTask:
    def __init__(
        self, model: Whisper, tokenizer: Tokenizer, options: DecodingOptions, cancel=None, backend=None
    ):
        self.model = model
        self.cancel = cancel  # polled every few tokens: a cancelled window raises Cancelled
        self.tokenizer = tokenizer
        self.options = options
        self.n_ctx = model.dims.n_text_ctx
        self.sample_len = options.sample_len or self.n_ctx // 2
        self.initial_tokens = self._initial_tokens()
        self.sample_begin = len(self.initial_tokens)
        self.sot_index = self.initial_tokens.index(tokenizer.sot)
        precision = TIME_PRECISION
        max_init = None
        if options.max_initial_timestamp is not None:
            max_init = round(options.max_initial_timestamp / precision)
        self.beam_search = options.temperature == 0 and (options.beam_size or 1) > 1
        if self.beam_search:
            self.rows = options.beam_size
        else:
            self.rows = options.best_of if (options.temperature > 0 and options.best_of) else 1
        self.backend = (backend or MlxBackend(model)).for_rows(self.rows)  # given, or the network as it is
        self.rules = LogitRules(
            tokenizer,
            model.dims.n_vocab,
            self.sample_begin,
            self._suppress_tokens(),
            options.suppress_blank,
            not options.without_timestamps,
            max_init,
            xp=self.backend.xp,
        )

    def _encode_piece(self, piece) -> list[int]:
        if isinstance(piece, str):
            return self.tokenizer.encode(" " + piece.strip())
        return list(piece)

    def _initial_tokens(self) -> list[int]:
        o = self.options
        tokens = list(self.tokenizer.sot_sequence)
        if o.without_timestamps:
            tokens.append(self.tokenizer.no_timestamps)
        if o.prefix:
            prefix = self._encode_piece(o.prefix)[-(self.n_ctx // 2 - 1) + 1 :]
            tokens += prefix
        if o.prompt:
            prompt = self._encode_piece(o.prompt)[-(self.n_ctx // 2 - 1) :]
            tokens = [self.tokenizer.sot_prev] + prompt + tokens
        return tokens

    def _suppress_tokens(self) -> list[int]:
        spec = self.options.suppress_tokens
        if isinstance(spec, str):
            spec = [int(t) for t in spec.split(",") if t.strip()]
        spec = list(spec or [])
        if -1 in spec:
            spec = [t for t in spec if t >= 0]
            spec += list(self.model.suppress_ids or self.tokenizer.non_speech_tokens)
        t = self.tokenizer
        spec += [t.transcribe, t.translate, t.sot, t.sot_prev, t.sot_lm, t.no_speech]
        return sorted(set(spec))

    # ------------------------------------------------------------------ main loop

    def run(self, cross_kv, language: str) -> DecodingResult:
        if self.beam_search:
            return self._beam_search(cross_kv, language, self.rows)
        return self._sample(cross_kv, language, self.rows)

    def _prefill(self, cross_kv, n: int):
        """Run the initial tokens once. Returns the last logits (n, V), the backend's
        steps that continue from them and the no-speech probability. The ``n``
        sequences share the initial tokens' keys and values (as they share the
        cross-attention K/V); each has its own after them."""
        rows = [self.sot_index, len(self.initial_tokens) - 1]
        logits, prefix = self.backend.prompt(self.initial_tokens, cross_kv, rows)
        no_speech = mx.softmax(logits[0, 0], axis=-1)[self.tokenizer.no_speech]
        last = logits[:, 1]
        if n > 1:
            last = mx.repeat(last, n, 0)
        if self.backend.xp is np:
            last = np.array(last)
        return last, self.backend.steps(cross_kv, prefix, n, self.sample_len + 1), no_speech

    def _sample(self, cross_kv, language: str, n: int) -> DecodingResult:
        t = self.options.temperature
        eot = self.tokenizer.eot
        logits, steps, no_speech = self._prefill(cross_kv, n)
        xp = steps.xp
        state = None
        tokens, token_lps = [], []
        sum_logprobs = xp.zeros((n,), dtype=xp.float32)
        done = xp.zeros((n,), dtype=xp.bool_)
        keys = mx.random.split(mx.random.key(self.options.seed), self.sample_len) if t > 0 else None
        for step in range(self.sample_len):
            self._check_cancel(step)
            logits = self.rules(logits, state)
            nxt = xp.argmax(logits, axis=-1) if t == 0 else _categorical(logits, t, keys[step])
            nxt = xp.where(done, eot, nxt).astype(xp.int32)
            lp = (xp.take_along_axis(logits, nxt[:, None], axis=-1) - kernel_ops.logsumexp(logits))[:, 0]
            sum_logprobs = sum_logprobs + xp.where(done, 0.0, lp)
            token_lps.append(lp)
            done = done | (nxt == eot)
            _prefetch(done)  # the stop test below then waits for this step only
            tokens.append(nxt)
            if self.sample_begin + step + 1 >= self.n_ctx:
                break
            state = self.rules.advance(state, nxt)
            logits = steps(nxt)
            _prefetch(logits, state, sum_logprobs)
            if bool(done.all()):
                break
        rows = np.array(xp.stack(tokens, axis=1)).tolist()
        scores = np.array(sum_logprobs).tolist()
        seqs = [self._strip(r) for r in rows]
        best = self._rank(seqs, scores)
        result = self._result(seqs[best], scores[best], float(no_speech), language)
        result.token_logprobs = np.array(xp.stack(token_lps, axis=1)[best]).tolist()[: len(seqs[best])]
        return result

    def _beam_search(self, cross_kv, language: str, beam: int) -> DecodingResult:
        eot = self.tokenizer.eot
        patience = self.options.patience or 1.0
        max_finished = round(beam * patience)
        logits, steps, no_speech = self._prefill(cross_kv, beam)
        xp = steps.xp
        beams: list[list[int]] = [[] for _ in range(beam)]
        sum_lp = [0.0] * beam
        finished: dict[tuple, float] = {}
        state = None
        for step in range(self.sample_len):
            self._check_cancel(step)
            masked = self.rules(logits, state)
            logprobs = masked - kernel_ops.logsumexp(masked)
            top = top_indices(logprobs, beam + 1)
            top_lp = xp.take_along_axis(logprobs, top, axis=-1)
            top, top_lp = np.array(top).tolist(), np.array(top_lp).tolist()
            scores, sources = {}, {}
            rows = range(1 if step == 0 else beam)  # all beams are identical at first
            for j in rows:
                for tok, lp in zip(top[j], top_lp[j]):
                    seq = tuple(beams[j] + [tok])
                    scores[seq] = sum_lp[j] + lp
                    sources[seq] = j
            new_beams, new_lp, src = [], [], []
            for seq in sorted(scores, key=scores.get, reverse=True):
                if seq[-1] == eot:
                    if len(finished) < max_finished:
                        finished[seq] = scores[seq]
                else:
                    new_beams.append(list(seq))
                    new_lp.append(scores[seq])
                    src.append(sources[seq])
                    if len(new_beams) == beam:
                        break
            if len(finished) >= max_finished or self.sample_begin + step + 1 >= self.n_ctx:
                break
            beams, sum_lp = new_beams, new_lp
            steps.reorder(src)
            last = xp.array([b[-1] for b in beams], dtype=xp.int32)
            state = self.rules.advance(None if state is None else state.take(xp.array(src)), last)
            logits = steps(last)
        if not finished:
            for seq, lp in zip(beams, sum_lp):
                finished[tuple(seq)] = lp
        seqs = [self._strip(list(s)) for s in finished]
        scores = list(finished.values())
        best = self._rank(seqs, scores)
        return self._result(seqs[best], scores[best], float(no_speech), language)

    def _check_cancel(self, step: int) -> None:
        if self.cancel is not None and step % 4 == 0 and self.cancel():
            raise Cancelled()

    def _strip(self, row: list[int]) -> list[int]:
        eot = self.tokenizer.eot
        return row[: row.index(eot)] if eot in row else row

    def _rank(self, seqs: list[list[int]], scores: list[float]) -> int:
        """Highest length-normalised log-probability (Google NMT penalty if given)."""
        alpha = self.options.length_penalty

        def score(i):
            n = len(seqs[i]) + 1
            penalty = n if alpha is None else ((5 + n) / 6) ** alpha
            return scores[i] / penalty

        return max(range(len(seqs)), key=score)

    def _result(self, tokens, sum_logprob, no_speech, language) -> DecodingResult:
        text = self.tokenizer.decode(tokens)
        return DecodingResult(
            language=language,
            tokens=tokens,
            text=text,
            avg_logprob=sum_logprob / (len(tokens) + 1),
            sum_logprob=sum_logprob,
            no_speech_prob=no_speech,
            temperature=self.options.temperature,
            compression_ratio=compression_ratio(text),
        )


def decode(
    model: Whisper,
    audio_features: mx.array,
    tokenizer: Tokenizer,
    options: DecodingOptions = DecodingOptions(),
    cross_kv=None,
) -> DecodingResult:
    """Decode one window of encoded audio (1, n_audio_ctx, n_state)."""
    cross_kv = cross_kv or model.decoder.cross_kv(audio_features)
    language = options.language or "en"
    return DecodingTask(model, tokenizer, options).run(cross_kv, language)
