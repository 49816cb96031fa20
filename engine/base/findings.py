"""The schema of a run's findings.json: what the training doctor (engine.doctor) found, one typed record per
finding, written by the run's trainer and read by the CLI and the studio. Standard library only.

A finding appears once (``first_step``), is updated while it holds (``step``, ``evidence``) and is closed
when it has stopped holding (``resolved_step``); a later recurrence is a new finding. Its suggestions each
name one config key, the value to set and why; ``safe`` says the value may be applied to the run and the run
resumed from its checkpoint (the key is not one a checkpoint fixes: model, options, resolution, dataset,
seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

FINDINGS_FILE = "findings.json"

# Kinds of finding (engine.doctor's detectors).
D_OVERPOWERING, MODE_COLLAPSE, OSCILLATION, DIVERGING = "d_overpowering", "mode_collapse", "oscillation", "diverging"
METRIC_PLATEAU, METRIC_RISING = "metric_plateau", "metric_rising"
MEMORISATION, AUGMENTATION_LEAK = "memorisation", "augmentation_leak"
KINDS = (D_OVERPOWERING, MODE_COLLAPSE, OSCILLATION, DIVERGING, METRIC_PLATEAU, METRIC_RISING, MEMORISATION,
         AUGMENTATION_LEAK)
# Severities, mildest first.
INFO, WARNING, CRITICAL = "info", "warning", "critical"
SEVERITIES = (INFO, WARNING, CRITICAL)


@dataclass(frozen=True)
class Suggestion:
    """Set config ``key`` to ``value`` (a JSON value), because ``why``. ``safe``: the run may take it on resume."""

    key: str
    value: Any
    why: str
    safe: bool = True

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Suggestion:
        return cls(str(data["key"]), data.get("value"), str(data.get("why", "")), bool(data.get("safe", False)))

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value, "why": self.why, "safe": self.safe}


@dataclass(frozen=True)
class Finding:
    """One diagnosis: what (``kind``, ``title``, ``explanation`` in plain words), how sure and how bad
    (``severity``), the numbers it rests on (``evidence``), what to change (``suggestions``) and when it held
    (``first_step`` … ``step``; ``resolved_step`` once it stopped)."""

    kind: str
    severity: str
    title: str
    explanation: str
    first_step: int
    step: int
    evidence: Mapping[str, float | str] = field(default_factory=dict)
    suggestions: tuple[Suggestion, ...] = ()
    resolved_step: int | None = None

    @property
    def active(self) -> bool:
        return self.resolved_step is None

    @property
    def safe(self) -> bool:
        """Whether some suggestion can be applied and the run resumed."""
        return any(s.safe for s in self.suggestions)

    def resolved(self, step: int) -> Finding:
        return replace(self, resolved_step=step)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        resolved = data.get("resolved_step")
        return cls(str(data["kind"]), str(data.get("severity", WARNING)), str(data.get("title", "")),
                   str(data.get("explanation", "")), int(data.get("first_step", 0)), int(data.get("step", 0)),
                   dict(data.get("evidence") or {}),
                   tuple(Suggestion.from_dict(s) for s in data.get("suggestions") or ()),
                   None if resolved is None else int(resolved))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "title": self.title, "explanation": self.explanation,
                "first_step": self.first_step, "step": self.step, "evidence": dict(self.evidence),
                "suggestions": [s.to_dict() for s in self.suggestions], "resolved_step": self.resolved_step,
                "safe": self.safe}


def findings_from_json(data: Any) -> list[Finding]:
    """The findings of a parsed findings.json ({"findings": [...]}); malformed entries are skipped."""
    found = []
    for item in data.get("findings", []) if isinstance(data, dict) else []:
        try:
            found.append(Finding.from_dict(item))
        except (KeyError, TypeError, ValueError):
            continue
    return found


def findings_to_json(findings: list[Finding], step: int) -> dict[str, Any]:
    """What findings.json holds: the findings, and the step the doctor had checked up to when it wrote them (it
    writes when a finding opens, changes or closes, and after catching up with a run's records)."""
    return {"step": step, "findings": [f.to_dict() for f in findings]}
