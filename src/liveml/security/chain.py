"""The audit chain's arithmetic: the hash every entry must carry, and the walk that checks a whole log.

Pure code over entries given in ``seq`` order (no database; ``audit.verify`` feeds it page by page).
Memory stays bounded however long the log is: the walk holds the entries just before and after the one it
judges, and keeps only anomalous entries (at most :data:`MAX_FINDINGS`) for the final diagnosis, which
tells an edited entry from a deleted, inserted or reordered one:

- *edited*: the entry's content no longer hashes to its ``hash`` (or it was rewritten with a recomputed
  hash, and the next entry still links to the old one);
- *deleted*: ``seq`` jumps and the next entry does not link to the one before the gap; or the entries
  after a deleted one were renumbered to hide the gap (each hashes correctly under its old number);
- *inserted*: an entry that links correctly but skips numbers, that neither hashes nor links, or that
  later entries were renumbered to make room for;
- *reordered*: two entries each hold what was written as the other;
- *broken_link*: the first entry does not start from the genesis hash, or an entry differs from a head
  (``seq`` and hash) kept elsewhere."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

GENESIS = "0" * 64
#: anomalous entries kept for the diagnosis; beyond this they are only counted
MAX_FINDINGS = 10_000
#: unsealed entries compared pairwise to find swapped ones
MAX_PAIRS = 300

ProblemKind = Literal["edited", "deleted", "reordered", "inserted", "broken_link"]


def entry_hash(prev_hash: str, seq: int, at: datetime, actor: str, address: str | None, action: str,
               target: str, before: Any, after: Any) -> str:  # fmt: skip
    """The hash an entry must carry, given the one before it."""
    body = json.dumps(
        [seq, at.isoformat(timespec="microseconds"), actor, address, action, target, before, after],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
        ensure_ascii=False,
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


class AuditEntry(BaseModel):
    """One entry as stored: who did what to which target, when, from where, and the change."""

    model_config = ConfigDict(frozen=True)

    seq: int
    at: datetime
    actor: str
    address: str | None
    action: str
    target: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str

    def computed(self, *, seq: int | None = None, prev_hash: str | None = None) -> str:
        """The hash this content should carry (at ``seq``, after ``prev_hash``: by default its own)."""
        return entry_hash(
            self.prev_hash if prev_hash is None else prev_hash,
            self.seq if seq is None else seq,
            self.at,
            self.actor,
            self.address,
            self.action,
            self.target,
            self.before,
            self.after,
        )


class AuditProblem(BaseModel):
    model_config = ConfigDict(frozen=True)

    #: the entry the problem is about (the first one, when it concerns several)
    seq: int
    kind: ProblemKind
    message: str
    #: every entry concerned: both of a swapped pair, the first and last of a missing or renumbered range
    seqs: list[int]


class AuditReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    ok: bool
    entries_checked: int
    problems: list[AuditProblem]
    #: anomalous entries past :data:`MAX_FINDINGS`, counted but not diagnosed
    undiagnosed: int = 0
    #: the last entry: keep ``head_seq`` and ``head_hash`` elsewhere to detect a rewrite of the whole chain
    head_seq: int | None = None
    head_hash: str | None = None


@dataclass(frozen=True)
class _Finding:
    entry: AuditEntry
    prev_seq: int  # 0 before the first entry
    gap: int  # numbers skipped between the previous entry and this one
    linked: bool  # prev_hash is the previous entry's hash (GENESIS for the first)
    sealed: bool  # the content hashes to the entry's hash
    next_links: bool | None  # the next entry's prev_hash is this entry's hash (None: the last entry)
    moved: int | None  # the seq under which the content does hash (renumbered by one)

    @property
    def seq(self) -> int:
        return self.entry.seq

    @property
    def shift(self) -> int | None:
        """+1: the content was written one number later (renumbered down); -1: one number earlier."""
        return None if self.moved is None else self.moved - self.entry.seq


def _problem(seq: int, kind: ProblemKind, message: str, *seqs: int) -> AuditProblem:
    return AuditProblem(seq=seq, kind=kind, message=message, seqs=list(seqs or (seq,)))


def _span(first: int, last: int) -> str:
    return f"entry {first}" if first == last else f"entries {first} to {last}"


class ChainWalk:
    """``walk.feed(entry)`` for every entry in ``seq`` order, then ``walk.report()``. ``anchor`` is a
    (seq, hash) kept outside the database: the entry must still be there with that hash."""

    def __init__(self, anchor: tuple[int, str] | None = None) -> None:
        self.anchor = anchor
        self._anchor_hash: str | None = None
        self._prev: AuditEntry | None = None
        self._current: AuditEntry | None = None
        self._findings: list[_Finding] = []
        self._undiagnosed = 0
        self.count = 0

    def feed(self, entry: AuditEntry) -> None:
        self.count += 1
        if self.anchor is not None and entry.seq == self.anchor[0]:
            self._anchor_hash = entry.hash
        if self._current is not None:
            self._judge(self._prev, self._current, entry)
        self._prev, self._current = self._current, entry

    def report(self) -> AuditReport:
        if self._current is not None:
            self._judge(self._prev, self._current, None)
            self._prev, self._current = self._current, None
        last = self._prev
        problems = _diagnose(self._findings) + self._anchor_problems(last)
        problems.sort(key=lambda p: p.seq)
        return AuditReport(
            ok=not problems and not self._undiagnosed,
            entries_checked=self.count,
            problems=problems,
            undiagnosed=self._undiagnosed,
            head_seq=last.seq if last is not None else None,
            head_hash=last.hash if last is not None else None,
        )

    def _judge(self, prev: AuditEntry | None, entry: AuditEntry, following: AuditEntry | None) -> None:
        prev_seq = prev.seq if prev is not None else 0
        gap = entry.seq - prev_seq - 1
        linked = entry.prev_hash == (prev.hash if prev is not None else GENESIS)
        sealed = entry.computed() == entry.hash
        if gap == 0 and linked and sealed:
            return
        if len(self._findings) >= MAX_FINDINGS:
            self._undiagnosed += 1
            return
        moved = None
        if not sealed:
            moved = next(
                (s for s in (entry.seq - 1, entry.seq + 1) if entry.computed(seq=s) == entry.hash), None
            )
        following_links = None if following is None else following.prev_hash == entry.hash
        self._findings.append(_Finding(entry, prev_seq, gap, linked, sealed, following_links, moved))

    def _anchor_problems(self, last: AuditEntry | None) -> list[AuditProblem]:
        if self.anchor is None:
            return []
        seq, expected = self.anchor
        if self._anchor_hash is None:
            ends = f"it now ends at entry {last.seq}" if last is not None else "it is empty"
            return [
                _problem(
                    seq,
                    "deleted",
                    f"entry {seq}, the head kept elsewhere, is missing: the log was "
                    f"truncated or renumbered ({ends})",
                )
            ]
        if self._anchor_hash != expected:
            return [
                _problem(
                    seq,
                    "broken_link",
                    f"entry {seq} no longer has the hash kept for it "
                    f"({expected[:16]}…, now {self._anchor_hash[:16]}…): the log up to it was "
                    "rewritten and its hashes recomputed",
                )
            ]
        return []


def _belongs(content: _Finding, slot: _Finding) -> bool:
    """The content of ``content`` is what was written at ``slot``'s seq (moved whole, or without its hashes)."""
    entry, at = content.entry, slot.entry
    return (
        entry.computed(seq=at.seq) == entry.hash
        or entry.computed(seq=at.seq, prev_hash=at.prev_hash) == at.hash
    )


def _diagnose(findings: list[_Finding]) -> list[AuditProblem]:
    problems: list[AuditProblem] = []
    explained: set[int] = set()
    # 1. swapped pairs: each entry holds what was written as the other
    unsealed = [f for f in findings if not f.sealed][:MAX_PAIRS]
    for i, one in enumerate(unsealed):
        for other in unsealed[i + 1 :]:
            if one.seq in explained or other.seq in explained:
                continue
            if _belongs(one, other) and _belongs(other, one):
                problems.append(
                    _problem(
                        one.seq,
                        "reordered",
                        f"entries {one.seq} and {other.seq} are out of "
                        "order: each holds what was written as the other",
                        one.seq,
                        other.seq,
                    )
                )
                explained |= {one.seq, other.seq}
    # 2. runs renumbered by one: to hide a deleted entry (+1) or to make room for an inserted one (-1)
    runs: list[list[_Finding]] = []
    for finding in findings:
        if finding.seq in explained or finding.shift is None:
            continue
        if runs and runs[-1][-1].seq == finding.seq - 1 and runs[-1][-1].shift == finding.shift:
            runs[-1].append(finding)
        else:
            runs.append([finding])
    for run in runs:
        problems.append(_renumbered(run))
        explained |= {f.seq for f in run}
        if run[0].shift == -1:
            explained.add(run[0].seq - 1)  # the inserted entry itself
    # 3. the rest, one entry at a time
    flagged = {f.seq for f in findings}
    for f in findings:
        if f.seq not in explained:
            problems.extend(_single(f, flagged))
    return problems


def _renumbered(run: list[_Finding]) -> AuditProblem:
    first, last = run[0].seq, run[-1].seq
    shift = run[0].shift or 0
    was = f"{first + shift}" if first == last else f"{first + shift} to {last + shift}"
    if shift == 1:
        message = (
            f"entry {first} is missing (deleted); the entries after it were renumbered to hide the gap "
            f"({_span(first, last)} were written as {was})"
        )
        return _problem(first, "deleted", message, first, last)
    message = (
        f"entry {first - 1} was inserted (forged); the entries after it were renumbered to make room "
        f"({_span(first, last)} were written as {was})"
    )
    return _problem(first - 1, "inserted", message, first - 1, last)


def _single(f: _Finding, flagged: set[int]) -> list[AuditProblem]:
    seq = f.seq
    if f.gap > 0:
        if f.linked:
            return [
                _problem(
                    seq,
                    "inserted",
                    f"entry {seq} was inserted: it links to entry {f.prev_seq}, but "
                    f"liveml numbers entries without gaps (no entry {f.prev_seq + 1} was ever written)",
                )
            ]
        first, last = f.prev_seq + 1, seq - 1
        head = "; the head of the log was removed" if f.prev_seq == 0 else ""
        verb = "is" if first == last else "are"
        out = [
            _problem(first, "deleted", f"{_span(first, last)} {verb} missing (deleted){head}", first, last)
        ]
        if not f.sealed:
            out.append(
                _problem(seq, "edited", f"entry {seq} was edited: its content no longer matches its hash")
            )
        return out
    if f.sealed:  # intact itself, but not linked to the entry before it
        if f.prev_seq == 0:
            return [
                _problem(
                    seq,
                    "broken_link",
                    f"entry {seq} does not start the chain: its prev_hash is not "
                    "the genesis hash (the head of the log was replaced)",
                )
            ]
        if f.prev_seq in flagged:
            return []  # the entry before it has its own problem, which explains this one
        return [
            _problem(
                f.prev_seq,
                "edited",
                f"entry {f.prev_seq} was rewritten and its hash recomputed: "
                f"entry {seq} still links to its original hash",
            )
        ]
    if f.linked:
        return [_problem(seq, "edited", f"entry {seq} was edited: its content no longer matches its hash")]
    if f.next_links:
        return [
            _problem(
                seq,
                "edited",
                f"entry {seq} was edited: neither its content nor its link to entry "
                f"{f.prev_seq or 'genesis'} matches its hash (entry {seq + 1} still links to it)",
            )
        ]
    return [
        _problem(
            seq,
            "inserted",
            f"entry {seq} is not one liveml wrote (inserted or replaced): neither its "
            f"hash nor its link to the entry before it is right",
        )
    ]


__all__ = [
    "GENESIS",
    "MAX_FINDINGS",
    "AuditEntry",
    "AuditProblem",
    "AuditReport",
    "ChainWalk",
    "ProblemKind",
    "entry_hash",
]
