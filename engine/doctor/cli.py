"""`python -m engine doctor --run RUN`: diagnose a run after the fact from its records (read-only)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.base.findings import Finding
from engine.doctor.doctor import diagnose
from engine.runs import Run


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `doctor` subcommand."""
    p = subparsers.add_parser("doctor", help="diagnose a run from its records: what went wrong and what to change",
                              description="Replays the training doctor over the run's metrics.jsonl with its "
                                          "current config and prints every finding, open ones first. Writes "
                                          "nothing.")
    p.add_argument("--run", required=True, type=Path, help="run directory")
    p.add_argument("--json", action="store_true", help="print the findings as JSON (findings.json's schema)")
    p.set_defaults(func=cmd_doctor)


def report(finding: Finding) -> str:
    """A finding as a few lines of text."""
    state = (f"since step {finding.first_step:,}" if finding.active
             else f"steps {finding.first_step:,}–{finding.resolved_step:,}, resolved")
    lines = [f"[{finding.severity}] {finding.title} ({state})", f"  {finding.explanation}"]
    lines += [f"  {name}: {value:.4g}" if isinstance(value, float) else f"  {name}: {value}"
              for name, value in finding.evidence.items()]
    for s in finding.suggestions:
        change = f"--set {s.key}={json.dumps(s.value)}" if s.value is not None else s.key
        lines.append(f"  try {change}: {s.why}{'' if s.safe else ' (a new run)'}")
    return "\n".join(lines)


def cmd_doctor(args: argparse.Namespace) -> int:
    run = Run(args.run)
    if not run.exists():
        raise FileNotFoundError(f"{args.run} is not a run directory (no config.json)")
    found = sorted(diagnose(run), key=lambda f: (not f.active, f.first_step))
    if args.json:
        print(json.dumps([f.to_dict() for f in found], indent=2))
    elif not found:
        print(f"no findings for run {run.name}: nothing in its records looks wrong", file=sys.stderr)
    else:
        print("\n\n".join(report(f) for f in found))
    return 0
