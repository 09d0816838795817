"""Report of a replacement: what was replaced, what was left alone and why.

:func:`~reactivate.replace_activations` returns a :class:`ReplacementReport`
with one :class:`ReplacedSite` per replaced call site and one
:class:`SkippedSite` per activation left unchanged. The report renders as
plain text (``str``), as Markdown tables or as JSON-serialisable dicts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ReplacedSite", "SkippedSite", "ReplacementReport"]


@dataclass
class ReplacedSite:
    """One replaced activation call site.

    Attributes:
        name: qualified name of the adaptive module in the model.
        kind: ``"module"`` (an activation module swapped in place),
            ``"call"`` (a further call of a reused module, given its own
            module) or ``"function"`` (a functional call rewritten by fx).
        original: readable form of the original, such as
            ``"torch.nn.ReLU(inplace=True)"``.
        family: adaptive family, such as ``"ahaf"``.
        granularity: ``"layer"``, ``"channel"`` or ``"neuron"``.
        shape: parameter shape source (input shape without batch), or None.
        exact: True when the family reproduces the original exactly.
        max_abs_error: maximum of ``|adaptive - original|`` over the
            observed input range, or None without ``example_input``.
        max_abs_error_real_line: the same over every real input (``inf``
            when it grows without bound).
        observed_range: ``(min, max)`` of the inputs seen with
            ``example_input``, or None.
        inplace: True when the adaptive module writes its result into its
            input, because code after the original reads the overwritten
            tensor.
        config: the adaptive module's configuration.
    """

    name: str
    kind: str
    original: str
    family: str
    granularity: str
    shape: list[int] | None
    exact: bool
    max_abs_error: float | None
    max_abs_error_real_line: float
    observed_range: tuple[float, float] | None
    inplace: bool
    config: dict[str, Any]


@dataclass
class SkippedSite:
    """One activation left unchanged, with the reason."""

    name: str
    original: str
    reason: str


@dataclass
class ReplacementReport:
    """Result of :func:`replace_activations`.

    Attributes:
        preset: name of the preset used.
        granularity: requested granularity.
        dry_run: True when the model was not changed.
        replaced: one :class:`ReplacedSite` per replaced call site.
        skipped: one :class:`SkippedSite` per activation left alone.
        unreached: ``(module name, reason)`` for each module whose forward
            could not be traced although its source calls an activation.
        output_max_abs_error: with ``example_input``, the maximum absolute
            difference between the model's outputs before and after.
    """

    preset: str
    granularity: str
    dry_run: bool
    replaced: list[ReplacedSite] = field(default_factory=list)
    skipped: list[SkippedSite] = field(default_factory=list)
    unreached: list[tuple[str, str]] = field(default_factory=list)
    output_max_abs_error: float | None = None

    def __len__(self) -> int:
        return len(self.replaced)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-serialisable dicts and lists."""
        return {
            "preset": self.preset,
            "granularity": self.granularity,
            "dry_run": self.dry_run,
            "replaced": [asdict(s) for s in self.replaced],
            "skipped": [asdict(s) for s in self.skipped],
            "unreached": [list(u) for u in self.unreached],
            "output_max_abs_error": self.output_max_abs_error,
        }

    def _rows(self) -> list[list[str]]:
        rows = []
        for s in self.replaced:
            error = "exact" if s.exact and (s.max_abs_error or 0.0) == 0.0 else _fmt(s.max_abs_error)
            rows.append([
                s.name, s.original, s.family, s.granularity, error,
                _fmt(s.max_abs_error_real_line), "yes" if s.inplace else "",
            ])
        return rows

    def to_markdown(self) -> str:
        """Return the report as Markdown tables."""
        verb = "Would replace" if self.dry_run else "Replaced"
        lines = [f"{verb} {len(self.replaced)} activation sites (preset {self.preset!r}, "
                 f"granularity {self.granularity!r}); left {len(self.skipped)} alone.", ""]
        if self.replaced:
            lines += [
                "| site | original | family | granularity | max abs error (observed) | max abs error (real line) | in place |",
                "|---|---|---|---|---|---|---|",
            ]
            lines += ["| " + " | ".join(row) + " |" for row in self._rows()]
            lines.append("")
        if self.skipped:
            lines += ["| left alone | original | reason |", "|---|---|---|"]
            lines += [f"| {s.name} | {s.original} | {s.reason} |" for s in self.skipped]
            lines.append("")
        if self.unreached:
            lines += ["| not traced | reason |", "|---|---|"]
            lines += [f"| {name} | {reason} |" for name, reason in self.unreached]
            lines.append("")
        if self.output_max_abs_error is not None:
            lines.append(f"Max abs output difference on example_input: {_fmt(self.output_max_abs_error)}")
        return "\n".join(lines).rstrip() + "\n"

    def __str__(self) -> str:
        verb = "would replace" if self.dry_run else "replaced"
        lines = [f"ReplacementReport: {verb} {len(self.replaced)}, left alone {len(self.skipped)} "
                 f"(preset {self.preset!r}, granularity {self.granularity!r})"]
        for row in self._rows():
            name, original, family, gran, err, real, inplace = row
            tail = " [in place]" if inplace else ""
            lines.append(f"  {name}: {original} -> {family} ({gran}), error {err}, real line {real}{tail}")
        for s in self.skipped:
            lines.append(f"  {s.name}: {s.original} left alone: {s.reason}")
        for name, reason in self.unreached:
            lines.append(f"  {name or '<model>'}: not traced: {reason}")
        if self.output_max_abs_error is not None:
            lines.append(f"  max abs output difference on example_input: {_fmt(self.output_max_abs_error)}")
        return "\n".join(lines)

    __repr__ = __str__


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if math.isinf(value):
        return "inf"
    return f"{value:.3g}"
