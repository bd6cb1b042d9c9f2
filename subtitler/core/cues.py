"""From decoded speech to subtitle cues.

Whisper's segments are not subtitles: with word timings, cues are regrouped so
each starts on its first word and ends on its last, breaks at pauses and
punctuation, and fits the reading profile (line length, line count, duration,
reading speed). Without word timings, segments are converted as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Optional

from subtitler.core.document import Cue, Word
from subtitler.core.profiles import Profile, get_profile
from subtitler.core.timecode import seconds_to_ms

SENTENCE_END = re.compile(r"[.!?…。！？]['\"”)]*$")
# Titles whose period ends no sentence: a cue or line never ends between one and its name;
# and abbreviations whose period ends none either ("vs.", "e.g.").
TITLES = {*"mr mrs ms dr prof st jr sr sra srta mme mlle hr fr".split(), "vs", "e.g", "i.e"}
CLAUSE_END = re.compile(r"[,;:—–]['\"”)]*$")
# Words a line or cue should not end on, as subtitlers break lines (Netflix's and the BBC's
# guides): articles, prepositions, conjunctions, possessives, titles; and, in English, a
# subject pronoun or auxiliary with no verb after it ("what you're | doing").
WEAK = {
    *"a an the of to in on at for with and or but my your his her our their its this that from by as".split(),
    *TITLES,
    *"i we they he she i'm you're we're they're he's she's it's that's there's let's".split(),
    *"i've you've we've they've i'll you'll we'll they'll he'll she'll i'd you'd we'd they'd".split(),
    *"am is are was were will would can could should must shall might may".split(),
    *"don't doesn't didn't can't won't isn't aren't wasn't weren't couldn't wouldn't shouldn't".split(),
}
PAUSE_BREAK = 600  # ms of silence that always ends a cue
GRACE = 300  # ms a cue may linger after its last word


def cue_from_decoded(d) -> Cue:
    words = [Word(seconds_to_ms(w.start), seconds_to_ms(w.end), w.word, w.probability) for w in d.words]
    if words:
        words[-1].ends_segment = True  # Whisper's own segment ends are good breaks
    return Cue(seconds_to_ms(d.start), seconds_to_ms(d.end), d.text.strip(), words)


def _text(words: list[Word]) -> str:
    return "".join(w.text for w in words).strip()


def leads_on(word: str) -> bool:
    """Whether ``word`` (with no mark after it) should not end a line or a cue: it leads
    on to the next word (``WEAK``, and a title with its period: "Mr."). "is." ends a
    sentence; "is" leads on."""
    w = word.lower().replace("’", "'")
    return w in WEAK or (w.endswith(".") and w[:-1] in TITLES)


def ends_sentence(word: str) -> bool:
    """Whether ``word`` ends a sentence: its last mark is one that does, and it is not a
    title ("Mr.", "Dr.")."""
    return bool(SENTENCE_END.search(word)) and word.lower().rstrip(".'\"”)") not in TITLES


def _break_score(words: list[Word], k: int) -> float:
    """How good it is to break after word k (higher is better)."""
    w = words[k].text.strip()
    score = 0.0
    if ends_sentence(w):
        score += 3
    elif CLAUSE_END.search(w):
        score += 2
    if k + 1 < len(words):
        score += min(2.0, (words[k + 1].start - words[k].end) / 250)
    if words[k].ends_segment:
        score += 2.5
    if k + 1 < len(words) and words[k + 1].start - words[k].end >= PAUSE_BREAK:
        score += 10
    if leads_on(w):
        score -= 3
    return score


def wrap_lines(text: str, profile: Profile) -> str:
    """Break a cue's text into at most ``max_lines`` lines, balanced, at good points."""
    text = " ".join(text.split())
    if len(text) <= profile.max_chars_per_line or profile.max_lines < 2:
        return text
    tokens = text.split(" ")
    best, best_cost = text, float("inf")
    for k in range(1, len(tokens)):
        a, b = " ".join(tokens[:k]), " ".join(tokens[k:])
        over = max(0, len(a) - profile.max_chars_per_line) + max(0, len(b) - profile.max_chars_per_line)
        cost = over * 100 + abs(len(a) - len(b)) * 0.5
        last = tokens[k - 1]
        if CLAUSE_END.search(last) or ends_sentence(last):
            cost -= 15
        if leads_on(last):
            cost += 25
        if cost < best_cost:
            best, best_cost = a + "\n" + b, cost
    return best


def _wraps(text: str, profile: Profile) -> bool:
    """Whether ``wrap_lines`` gives ``text`` lines of at most the profile's length: one
    line, or a break with both sides short enough (under 120 characters a line, any such
    break costs less than one over the length, so ``wrap_lines`` picks one). Without
    building the lines: the cue maker asks this of every candidate cue."""
    limit = profile.max_chars_per_line
    if limit >= 120:
        return all(len(line) <= limit for line in wrap_lines(text, profile).split("\n"))
    tokens = text.split()
    total = sum(map(len, tokens)) + len(tokens) - 1
    if total <= limit:
        return True
    if profile.max_lines < 2:
        return False
    first = -1  # the first line's length with k tokens
    for k in range(1, len(tokens)):
        first += len(tokens[k - 1]) + 1
        if first > limit:
            return False
        if total - first - 1 <= limit:
            return True
    return False


def _fits(words: list[Word], profile: Profile) -> bool:
    text = _text(words)
    if len(text) > profile.max_chars_per_line * profile.max_lines or not _wraps(text, profile):
        return False
    return words[-1].end - words[0].start <= profile.max_duration


CUE_COST = 2.0  # what one more cue costs; a break point must earn more than this


def regroup(words: list[Word], profile: Profile) -> list[list[Word]]:
    """Split words into cues that each fit the profile, choosing the breaks with a
    dynamic program: every cue costs ``CUE_COST``, every break earns its score, and
    long pauses always break."""
    if not words:
        return []
    n = len(words)
    max_chars = profile.max_chars_per_line * profile.max_lines
    best = [0.0] + [float("inf")] * n
    back = [0] * (n + 1)
    for j in range(1, n + 1):
        earned = _break_score(words, j - 1) if j < n else 0.0  # a break after word j - 1
        for i in range(j - 1, -1, -1):
            if i < j - 1 and words[j - 1].start - words[j - 2].end >= PAUSE_BREAK:
                break  # a long pause inside the cue is not allowed
            text, span = _text(words[i:j]), words[j - 1].end - words[i].start
            if i < j - 1 and (len(text) > max_chars or span > profile.max_duration):
                break  # too long, and longer still further back
            if best[i] == float("inf"):
                continue
            if i < j - 1 and not _wraps(text, profile):  # (one word always fits)
                continue
            cost = best[i] + CUE_COST - earned
            if span < profile.min_duration / 2:
                cost += 1.0  # very short cues flash by
            cost += max(0.0, 1.0 - len(text) / 20)  # and so do one-word ones
            if cost < best[j]:
                best[j], back[j] = cost, i
    groups, j = [], n
    while j > 0:
        groups.append(words[back[j] : j])
        j = back[j]
    return groups[::-1]


def has_letter(text: str) -> bool:
    """Whether ``text`` has a letter in any script: a cue without one ("...", "2",
    "♪") is noise Whisper wrote over music or silence, never a subtitle."""
    return any(ch.isalpha() for ch in text)


def segments_as_cues(decoded: Iterable, profile: Profile | str | None = None) -> list[Cue]:
    """Whisper's own segments as cues, as they are (lines wrapped for ``profile``)."""
    p = get_profile(profile)
    segs = [cue_from_decoded(d) for d in decoded]
    return [Cue(s.start, s.end, wrap_lines(s.text, p), s.words) for s in segs if has_letter(s.text)]


def words_in_order(segs: list[Cue]) -> list[Word]:
    """The segments' words, each starting no earlier than the one before. A segment
    that word timing left without words (a garbled decode) is one word over its own
    time, after the words before it: its text stays, and the cues stay in order."""
    out: list[Word] = []
    for s in segs:
        words = s.words
        if not words and s.text.strip():
            start = max(s.start, out[-1].end if out else 0)
            words = [Word(start, max(s.end, start), " " + s.text.strip(), 0.0, ends_segment=True)]
        for w in words:
            if w.text.strip():
                w.start = max(w.start, out[-1].start if out else 0)
                w.end = max(w.end, w.start)
                out.append(w)
    return out


def build_cues(
    decoded: Iterable, profile: Profile | str | None = None, media_duration: Optional[int] = None
) -> list[Cue]:
    """Turn decoded segments into subtitle cues under ``profile``: regrouped on their
    word timings, or as they are when no segment has any."""
    p = get_profile(profile)
    decoded = list(decoded)
    segs = [cue_from_decoded(d) for d in decoded]
    if not any(s.words for s in segs):
        return segments_as_cues(decoded, p)
    words = words_in_order(segs)
    cues = [cue_of(g, p) for g in regroup(words, p)]
    cues = settle_times([c for c in cues if has_letter(c.text)], p, media_duration)
    return merge_flashes(cues, p, media_duration)


def dialogue_parts(words: list[Word]) -> Optional[tuple[list[Word], list[Word]]]:
    """The two turns of a cue whose words are two decoded segments, the first ending a
    sentence ("Hello?" / "Hello."): how Whisper hands back two speakers' turns that
    follow each other closely. None for a cue of one turn."""
    ends = [k for k, w in enumerate(words[:-1]) if w.ends_segment]
    if len(ends) != 1 or not ends_sentence(words[ends[0]].text.strip()):
        return None
    k = ends[0] + 1
    return words[:k], words[k:]


def cue_of(words: list[Word], p: Profile, dialogue: bool = False) -> Cue:
    """A cue over ``words``: its lines wrapped for the profile, or, for two speakers'
    turns merged into one cue (``dialogue``), one line each opened by a dash
    (``- Hello?`` / ``- Hello.``) as subtitlers write them, when each fits a line."""
    text = wrap_lines(_text(words), p)
    parts = dialogue_parts(words) if dialogue and p.max_lines >= 2 else None
    if parts is not None:
        lines = ["- " + _text(part) for part in parts]
        if all(len(line) <= p.max_chars_per_line for line in lines):
            text = "\n".join(lines)
    return Cue(words[0].start, words[-1].end, text, words)


def speech_start(c: Cue) -> int:
    """Where a cue's speech starts: its first word (a cue may lead in before it)."""
    return c.words[0].start if c.words else c.start


def speech_end(c: Cue) -> int:
    """Where a cue's speech ends: its last word (a cue may stay on after it)."""
    return c.words[-1].end if c.words else c.end


def speech_gap(a: Cue, b: Cue) -> int:
    """The silence between cue ``a``'s speech and the later cue ``b``'s."""
    return speech_start(b) - speech_end(a)


def merge_flashes(cues: list[Cue], p: Profile, media_duration: Optional[int] = None) -> list[Cue]:
    """Merge each cue still under the profile's minimum duration (its neighbours left it
    no room to grow) into the neighbour nearer by speech (within a tenth of a second, the
    shorter) that can take it: the merged cue must fit the profile's lines and maximum
    duration. Two turns merged this way are written as
    a dialogue. A cue no neighbour can take stays, and ``check`` calls it unavoidable."""
    cues = list(cues)
    i = 0
    while i < len(cues):
        if cues[i].duration >= p.min_duration:
            i += 1
            continue
        # the nearer by speech, not by the cues' timing (a chained cue stays on up to the
        # next); within a tenth of a second the shorter, for the balanced cue
        sides = [
            j
            for _, _, j in sorted(
                (round(speech_gap(cues[min(i, j)], cues[max(i, j)]) / 100), len(cues[j].text), j)
                for j in (i - 1, i + 1)
                if 0 <= j < len(cues)
            )
        ]
        for j in sides:
            a, b = min(i, j), max(i, j)
            words = cues[a].words + cues[b].words
            if not words or words[-1].end - words[0].start > p.max_duration:
                continue
            merged = cue_of(words, p, dialogue=True)
            if "\n- " not in merged.text and not _fits(words, p):
                continue
            merged.start, merged.end = cues[a].start, max(cues[b].end, cues[a].end)
            cues[a : b + 1] = [merged]
            # A merge moves only its neighbours' room: settle them, and look again from the one before.
            settle_times(cues, p, media_duration, range(a - 1, a + 2))
            i = max(0, a - 1)
            break
        else:
            # No neighbour can take it whole: share the words of it and a neighbour out
            # again, so both last the minimum ("und dann gehen unsere" between two full cues).
            if not any(resplit(cues, min(i, j), p, media_duration) for j in sides):
                i += 1  # nor split anew with it: it stays
    return cues


def resplit(cues: list[Cue], a: int, p: Profile, media_duration: Optional[int] = None) -> bool:
    """Split the words of cues ``a`` and ``a + 1`` again, at the best break (``_break_score``)
    where both new cues fit the profile and, settled, last its minimum duration; in place.
    False, with ``cues`` as they were, when no break does."""
    words = cues[a].words + cues[a + 1].words
    lo, hi = max(0, a - 1), min(len(cues), a + 3)  # the two and the neighbours they settle against
    before = cues[lo - 1 : lo] if lo else []  # read where the first of them may start
    for k in sorted(range(1, len(words)), key=lambda k: -_break_score(words, k - 1)):
        left, right = words[:k], words[k:]
        if not (_fits(left, p) and _fits(right, p)):
            continue
        # copies of the neighbours and of the cue after them (a chained cue's start moves),
        # then the one after that, read for the room left: a few cues, whatever the file's length
        trial = [c.copy() for c in cues[lo:a]] + [cue_of(left, p), cue_of(right, p)]
        trial += [c.copy() for c in cues[a + 2 : hi + 1]]
        local = before + trial + cues[hi + 1 : hi + 2]
        settle_times(local, p, media_duration, range(len(before), len(before) + hi - lo))
        if min(trial[a - lo].duration, trial[a - lo + 1].duration) >= p.min_duration:
            cues[lo : hi + 1] = trial
            return True
    return False


def settle_times(
    cues: list[Cue], p: Profile, media_duration: Optional[int] = None, span: Optional[range] = None
) -> list[Cue]:
    """Keep the minimum gap, lead each cue in a little before its speech, stretch short
    or fast cues into the silence after them (never more than a grace period past speech
    unless the profile needs it), and chain cues whose speech is less than ``chain_gap``
    apart: a pause inside a turn, or one speaker taking over from another, keeps a
    subtitle on screen. ``span``: settle only those cues (the rest are settled already),
    beside their neighbours as they are."""

    def needed(c: Cue) -> int:
        return max(p.min_duration, int(len(c.text.replace("\n", "")) / p.max_cps * 1000) + 1)

    def limit(i: int) -> int:
        return (
            cues[i + 1].start - p.min_gap if i + 1 < len(cues) else (media_duration or cues[i].end + 10_000)
        )

    def lead_in(c: Cue, floor: int) -> Cue:
        """Start ``c`` up to ``lead_in`` before its first word, not before ``floor`` (the
        cue before it, settled) and within the profile's longest cue."""
        floor = max(floor, c.end - p.max_duration)
        c.start = max(min(c.start, floor), min(c.start, speech_start(c) - p.lead_in))
        return c

    for i in span or range(len(cues)):
        if not 0 <= i < len(cues):
            continue
        c = cues[i]
        lead_in(c, cues[i - 1].end + p.min_gap if i else 0)
        need, lim, last = needed(c), limit(i), i + 1 == len(cues)
        room = lim  # what this cue may grow into, less what the next needs to lead in before its speech
        if not last:
            nxt = cues[i + 1]
            room -= max(0, needed(nxt) - (limit(i + 1) - nxt.start))
        spoken = max(c.start, speech_start(c))
        # the reading time counts from the speech: a lead-in is on top of it
        target = max(c.end + min(GRACE, max(0, need - (c.end - spoken))), spoken + need)
        c.end = max(c.end, min(target, room))
        if not last and c.end < lim and speech_gap(c, cues[i + 1]) < p.chain_gap:
            # Chained: the next cue leads in (the viewer reads ahead) and this one hangs on to it.
            nxt = lead_in(cues[i + 1], c.end + p.min_gap)
            c.end = max(c.end, min(room, nxt.start - p.min_gap, c.start + p.max_duration))
        if not last and cues[i + 1].start - c.end < p.min_gap:
            c.end = max(c.start + 1, min(c.end, cues[i + 1].start - p.min_gap))
        if c.duration < need:
            # Blocked by the next cue: lead in a little before the speech instead,
            # never closer than the minimum gap to the previous cue.
            floor = cues[i - 1].end + p.min_gap if i else 0
            c.start = max(floor, min(c.start, c.end - need))
    return cues
