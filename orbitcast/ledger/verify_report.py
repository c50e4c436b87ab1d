"""What `orbitcast verify` reports: one result per segment, the head it was checked against,
and the table the CLI prints. Shared by the stream check and the recording match."""

from __future__ import annotations

from dataclasses import dataclass, field

from .tree_head import SignedTreeHead


@dataclass(frozen=True)
class SegmentResult:
    segment: str  # feed/rendition/seq, or a byte range for unattributable bytes
    ok: bool
    reason: str = ""


@dataclass
class Report:
    results: list[SegmentResult] = field(default_factory=list)
    head: SignedTreeHead | None = None
    fatal: str = ""  # set when nothing could be checked (no trusted head)
    notes: list[str] = field(default_factory=list)  # what was proven beyond segments (a clip's samples)

    @property
    def ok(self) -> bool:
        # Nothing checked is not a pass: an empty playlist proves nothing.
        return not self.fatal and bool(self.results) and all(r.ok for r in self.results)

    @property
    def failures(self) -> list[SegmentResult]:
        return [r for r in self.results if not r.ok]

    def table(self) -> str:
        """A plain two-column table: segment, result (and why, on failure)."""
        rows = [("segment", "result")]
        rows += [(r.segment, "ok" if r.ok else f"FAIL: {r.reason}") for r in self.results]
        width = max(len(a) for a, _ in rows)
        lines = [f"{a.ljust(width)}  {b}" for a, b in rows]
        if self.fatal:
            lines.append(f"FATAL: {self.fatal}")
        lines += self.notes
        passed = sum(r.ok for r in self.results)
        lines.append(f"{passed}/{len(self.results)} segments verified")
        return "\n".join(lines)
