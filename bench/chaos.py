"""Chaos: kill -9 a real training run again and again, resume it each time, and check the run.

A CPU training (the quick-faces-32 recipe narrowed to ngf/ndf 16, a checkpoint every --every steps,
a training record every step) runs through the CLI, ``python -m engine train``. --kills times its
whole process group is SIGKILLed, at one of three kinds of moment:

- random: a uniform --delay (seconds) after the session's first training record;
- aimed (a fraction --aim of the kills): as soon as a checkpoint write is seen in progress: the
  tensors' temp file, the tensors renamed into place with no JSON yet, or the JSON's temp file;
- start-up (a fraction --startup): uniformly within the last launch-to-first-record time.

After each kill the run directory is inspected: where the kill landed, the last step the session
logged, its leftovers (temp files, checkpoint tensors without their JSON), and every checkpoint JSON
(best.json included) is verified with load_checkpoint and its tensors checked finite; the newest
verifying ckpt_*.json is where the resume must start. ``--resume`` then starts the next session,
which is judged once it logs (or when it is killed in its start-up): a clean resume is alive (or
exits 0) and resumed from that checkpoint, and the earlier leftovers are gone once it trains. Steps
lost = the last step the killed session logged - the step its successor resumed from. The last
resume trains to completion: it must finish, with a verifying final checkpoint, no leftovers and
one training record per step in metrics.jsonl.

    python bench/chaos.py [--kills 50] [--every 20] [--delay 0 2] [--aim 0.3] [--startup 0.1]
                          [--seed 0] [--out DIR] [--set KEY=VALUE ...]

Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the worker trains (engine/__main__.py)

import torch  # noqa: E402

from engine.base import records  # noqa: E402
from engine.runs import Run  # noqa: E402
from engine.base.files import read_json  # noqa: E402
from engine.base.checkpoint import CheckpointError, load_checkpoint  # noqa: E402

POLL = 0.002  # seconds between looks for a checkpoint write in progress
FIRST_RECORD_TIMEOUT = 180.0
FINAL_TIMEOUT = 600.0
TARGETS = ("tensors temp", "JSON temp", "tensors without JSON")  # most specific first


def landed_as(path: Path) -> str:
    """The moment a leftover file shows the kill came at: one of TARGETS, else '<file> temp'."""
    name = path.name
    if name.endswith(".tmp") and path.parent.name == "checkpoints":
        return "tensors temp" if ".safetensors." in name else "JSON temp"
    if name.endswith(".safetensors"):
        return "tensors without JSON"
    return "grid temp" if path.parent.name == "grids" else f"{name[1:].rsplit('.', 2)[0]} temp"


def committed(checkpoints: Path) -> set[Path]:
    """The tensors files a checkpoint JSON in ``checkpoints`` names (best.json names best_<step>.safetensors)."""
    named = set()
    for path in checkpoints.glob("*.json"):
        try:
            named.add(checkpoints / json.loads(path.read_text())["tensors"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return named


def leftovers(run: Run) -> set[Path]:
    """Temp files anywhere in the run directory, and checkpoint tensors no checkpoint JSON names."""
    temps = set(run.path.rglob(".*.tmp"))
    if not run.checkpoints_dir.is_dir():
        return temps
    return temps | (set(run.checkpoints_dir.glob("*.safetensors")) - committed(run.checkpoints_dir))


def gone(path: Path) -> bool:
    return not path.exists() or (path.suffix == ".safetensors" and path in committed(path.parent))


@dataclass
class Verification:
    """Every checkpoint JSON of the run checked: names of corrupt and of non-finite ones, and the
    step of the newest ckpt_*.json that verifies (0 when none does)."""

    corrupt: list[str] = field(default_factory=list)
    nonfinite: list[str] = field(default_factory=list)
    resume_step: int = 0


def verify(run: Run) -> Verification:
    result = Verification()
    paths = sorted(run.checkpoints_dir.glob("*.json")) if run.checkpoints_dir.is_dir() else []
    for path in paths:
        try:
            meta, tensors = load_checkpoint(path)
        except CheckpointError:
            result.corrupt.append(path.name)
            continue
        if not all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point()):
            result.nonfinite.append(path.name)
        if path.name.startswith("ckpt_"):
            result.resume_step = max(result.resume_step, meta["step"])
    return result


def metrics_lines(run: Run) -> list[str]:
    """The complete lines of metrics.jsonl."""
    try:
        return run.metrics_path.read_text(encoding="utf-8").split("\n")[:-1]
    except FileNotFoundError:
        return []


class Session:
    """One worker process, ``python -m engine train``, in its own process group."""

    def __init__(self, run: Run, log: Path, expected: int, args: list[str]) -> None:
        self.run, self.log, self.expected = run, log, expected
        self.before = set(metrics_lines(run))
        self.launched = time.monotonic()
        command = [sys.executable, "-m", "engine", "train", "--run-dir", str(run.path), "--no-progress", *args]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def logged(self) -> list[records.TrainRecord]:
        """The training records this session has logged so far."""
        return records.train_records(json.loads(line) for line in metrics_lines(self.run)
                                     if line.strip() and line not in self.before)

    def wait_first_record(self) -> float | None:
        """Seconds from launch to the first training record; None when the worker exited or timed out."""
        while time.monotonic() - self.launched < FIRST_RECORD_TIMEOUT:
            if self.logged():
                return time.monotonic() - self.launched
            if self.proc.poll() is not None:
                return None
            time.sleep(0.02)
        return None

    def resumed_from(self) -> int | None:
        """The step it resumed from: its first record's (one a step) less one, else its status while
        starting; None when it reported neither."""
        logged = self.logged()
        if logged:
            return logged[0].step - 1
        try:
            status = read_json(self.run.status_path)
        except (OSError, ValueError):
            return None
        return status.get("step") if status.get("pid") == self.proc.pid else None

    def last_logged(self) -> int | None:
        logged = self.logged()
        return logged[-1].step if logged else self.resumed_from()

    def kill(self) -> bool:
        """SIGKILL its process group; whether the worker was alive until then."""
        alive = self.proc.poll() is None
        if alive:  # not reaped yet, so its process group id is still its own
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        return alive

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Kill:
    """One kill and what it left."""

    index: int
    kind: str
    after: float  # seconds after the session's launch
    alive: bool
    landed: str
    last_logged: int
    new_leftovers: set[Path]
    check: Verification


def wait_for_write(session: Session, target: str, ignore: set[Path], timeout: float) -> bool:
    """Poll the checkpoints folder until ``target`` (one of TARGETS) is seen; whether it was."""
    deadline = time.monotonic() + timeout
    folder = session.run.checkpoints_dir
    while time.monotonic() < deadline and session.proc.poll() is None:
        try:
            names = set(os.listdir(folder))
        except FileNotFoundError:
            names = set()
        for name in names:
            path = folder / name
            if path in ignore:
                continue
            if name.endswith(".tmp") and name.startswith(".ckpt_") and landed_as(path) == target:
                return True
            if target == "tensors without JSON" and name.startswith("ckpt_") and name.endswith(".safetensors") \
                    and f"{name.removesuffix('.safetensors')}.json" not in names:
                return True
        time.sleep(POLL)
    return False


def strike(session: Session, index: int, kind: str, rng: random.Random, args: argparse.Namespace,
           startup: float, pending: set[Path]) -> Kill:
    """Wait for the moment of ``kind``, SIGKILL the session and inspect what it left (leftovers
    beyond ``pending``, those of earlier kills not yet seen removed)."""
    if kind == "start-up":
        time.sleep(max(0.0, session.launched + rng.uniform(0, startup) - time.monotonic()))
    elif kind == "aimed":
        wait_for_write(session, rng.choice(TARGETS), pending, timeout=10.0)
    else:
        time.sleep(rng.uniform(*args.delay))
    after = time.monotonic() - session.launched
    alive = session.kill()
    new = leftovers(session.run) - pending
    logged = bool(session.logged())
    rank = {name: i for i, name in enumerate(TARGETS)}
    landed = min((landed_as(p) for p in new), key=lambda name: rank.get(name, len(rank))) if new else (
        "between steps" if logged else "start-up")
    last = session.last_logged()
    return Kill(index, kind, after, alive, landed, session.expected if last is None else last, new,
                verify(session.run))


@dataclass
class Tally:
    """What the whole chaos run saw."""

    clean: int = 0
    lost: list[int] = field(default_factory=list)
    corrupt: set[str] = field(default_factory=set)
    nonfinite: set[str] = field(default_factory=set)
    not_cleaned: set[Path] = field(default_factory=set)
    kinds: Counter = field(default_factory=Counter)
    landed: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def judge(kill: Kill, successor: Session, healthy: bool, pending: set[Path], tally: Tally) -> None:
    """Judge the resume that followed ``kill`` (``healthy``: its worker was alive when judged, or exited 0)
    and print the kill's line. ``pending`` (leftovers not yet seen removed) is checked once the
    successor trains; only those still there stay in it."""
    resumed = successor.resumed_from()
    trained = bool(successor.logged())
    stale = {p for p in pending if not gone(p)} if trained else set()
    clean = healthy and resumed in (None, kill.check.resume_step) and not stale
    lost = kill.last_logged - (kill.check.resume_step if resumed is None else resumed)
    tally.clean += clean
    tally.lost.append(lost)
    tally.not_cleaned |= stale
    if trained:
        pending.intersection_update(stale)
    shown = "not reported (killed in start-up)" if resumed is None else str(resumed)
    flags = [f"NOT CLEANED {len(stale)}"] * bool(stale) + ["NOT CLEAN"] * (not clean)
    flags += [f"CORRUPT {kill.check.corrupt}"] * bool(kill.check.corrupt)
    flags += [f"NON-FINITE {kill.check.nonfinite}"] * bool(kill.check.nonfinite)
    print(f"kill {kill.index:3d} {kill.kind:<8} at {kill.after:5.2f} s  landed {kill.landed:<21} "
          f"logged {kill.last_logged:5d}  resumed from {shown} (checkpoint {kill.check.resume_step})  "
          f"lost {lost:3d}  leftovers {len(kill.new_leftovers)}  {'  '.join(flags)}".rstrip(), flush=True)
    if not clean:
        tally.failures.append(f"kill {kill.index}: resume not clean\n{successor.tail()}")


def record(kill: Kill, tally: Tally, pending: set[Path]) -> None:
    tally.kinds[kill.kind] += 1
    tally.landed[kill.landed] += 1
    tally.corrupt |= set(kill.check.corrupt)
    tally.nonfinite |= set(kill.check.nonfinite)
    pending |= kill.new_leftovers


def final_state(run: Run, max_steps: int, session: Session) -> list[str]:
    """What is wrong with the run after the last resume trained to ``max_steps`` (empty: nothing)."""
    problems = []
    if session.proc.returncode != 0:
        problems.append(f"final session exited {session.proc.returncode}\n{session.tail()}")
    state = run.status()["state"]
    if state != "finished":
        problems.append(f"final status {state}")
    check = verify(run)
    if check.corrupt or check.nonfinite or check.resume_step != max_steps:
        problems.append(f"final checkpoints: corrupt {check.corrupt}, non-finite {check.nonfinite}, "
                        f"newest at step {check.resume_step} (want {max_steps})")
    left = leftovers(run)
    if left:
        problems.append(f"leftovers after the run: {sorted(str(p.relative_to(run.path)) for p in left)}")
    steps = [r.step for r in records.train_records(run.metrics())]
    if steps != list(range(1, max_steps + 1)):
        repeated = len(steps) - len(set(steps))
        problems.append(f"metrics.jsonl: {len(steps)} training records for {max_steps} steps "
                        f"({repeated} repeated steps)")
    return problems


def first_args(args: argparse.Namespace) -> list[str]:
    overrides = [*args.set, "model.options.ngf=16", "model.options.ndf=16",
                 f"train.checkpoint_every={args.every}", "train.log_every=1"]
    return ["--preset", "quick-faces-32", "--device", "cpu", "--dataset", args.dataset, "--max-steps", "1000000",
            *(x for pair in overrides for x in ("--set", pair))]


def choose_kind(rng: random.Random, args: argparse.Namespace, first: bool) -> str:
    roll = rng.random()
    if roll < args.aim:
        return "aimed"
    return "start-up" if roll < args.aim + args.startup and not first else "random"


def first_session(run: Run, logs: Path, args: argparse.Namespace) -> tuple[Session, float]:
    """Start the run; return once it logged and committed its first checkpoint (a resume needs one)."""
    session = Session(run, logs / "session_000.log", 0, first_args(args))
    startup = session.wait_first_record()
    while startup is not None and not run.checkpoints() and session.proc.poll() is None:
        time.sleep(0.02)
    if startup is None or not run.checkpoints():
        session.kill()
        sys.exit(f"the first session did not train to its first checkpoint:\n{session.tail()}")
    return session, startup


def kill_and_resume(run: Run, logs: Path, args: argparse.Namespace, tally: Tally) -> tuple[Kill, set[Path]]:
    """The kills, each but the last followed by a resume; returns the last kill and the leftovers not
    yet seen removed."""
    rng = random.Random(args.seed)
    pending: set[Path] = set()
    session, startup = first_session(run, logs, args)
    print(f"run {run.path}: first record {startup:.1f} s after launch; checkpoint every {args.every} steps",
          flush=True)
    previous: Kill | None = None
    try:
        for index in range(1, args.kills + 1):
            kind = choose_kind(rng, args, previous is None)
            if kind != "start-up":
                took = session.wait_first_record()
                if previous:
                    startup = took or startup
                    judge(previous, session, session.proc.poll() is None, pending, tally)
            kill = strike(session, index, kind, rng, args, startup, pending)
            if previous and kind == "start-up":
                judge(previous, session, kill.alive, pending, tally)
            record(kill, tally, pending)
            previous = kill
            if index < args.kills:
                session = Session(run, logs / f"session_{index:03d}.log", kill.check.resume_step, ["--resume"])
    finally:
        session.kill()
    return previous, pending


def chaos(args: argparse.Namespace) -> int:
    run = Run(args.out / "run")
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    begin, tally = time.monotonic(), Tally()
    last, pending = kill_and_resume(run, logs, args, tally)
    max_steps = last.last_logged + 2 * args.every
    session = Session(run, logs / f"session_{args.kills:03d}.log", last.check.resume_step,
                      ["--resume", "--max-steps", str(max_steps)])
    try:
        session.proc.wait(timeout=FINAL_TIMEOUT)
    finally:
        session.kill()
    judge(last, session, session.proc.returncode == 0, pending, tally)
    problems = final_state(run, max_steps, session)
    report(args, tally, problems, max_steps, time.monotonic() - begin)
    return 0 if passed(args, tally, problems) else 1


def passed(args: argparse.Namespace, tally: Tally, problems: list[str]) -> bool:
    return (tally.clean == args.kills and not tally.corrupt and not tally.nonfinite and not tally.not_cleaned
            and max(tally.lost) <= args.every and not problems)


def report(args: argparse.Namespace, tally: Tally, problems: list[str], max_steps: int, seconds: float) -> None:
    def counts(counter: Counter) -> str:
        return ", ".join(f"{name} {n}" for name, n in counter.most_common())

    rows = [
        ("kills", f"{args.kills} ({counts(tally.kinds)})"),
        ("landed", counts(tally.landed)),
        ("clean resumes", f"{tally.clean}/{args.kills}"),
        ("corrupt files", f"{len(tally.corrupt)}{f' {sorted(tally.corrupt)}' if tally.corrupt else ''}"),
        ("non-finite checkpoints", f"{len(tally.nonfinite)}{f' {sorted(tally.nonfinite)}' if tally.nonfinite else ''}"),
        ("leftovers not cleaned", str(len(tally.not_cleaned))),
        ("steps lost", f"max {max(tally.lost)}, mean {statistics.mean(tally.lost):.1f}"),
        ("checkpoint interval", f"{args.every} steps"),
        ("final run", "; ".join(problems) if problems else f"finished at step {max_steps}, checkpoint verifies, "
                                                           "no leftovers, one record per step"),
        ("total time", f"{seconds:.0f} s"),
    ]
    print()
    for name, value in rows:
        print(f"{name:<24} {value}")
    for failure in tally.failures:
        print(f"\n{failure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--every", type=int, default=20, help="checkpoint interval in steps")
    parser.add_argument("--delay", type=float, nargs=2, default=(0.0, 2.0), metavar=("LOW", "HIGH"),
                        help="seconds after the first record that a random kill waits (uniform)")
    parser.add_argument("--aim", type=float, default=0.3, help="fraction of kills aimed at checkpoint writes")
    parser.add_argument("--startup", type=float, default=0.1, help="fraction of kills during start-up")
    parser.add_argument("--dataset", default="builtin:faces:512")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill schedule")
    parser.add_argument("--out", type=Path, help="work folder (default: a new temporary one)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="training config overrides (train.log_every stays 1)")
    args = parser.parse_args()
    if args.kills < 1:
        parser.error("--kills must be at least 1")
    args.out = args.out or Path(tempfile.mkdtemp(prefix="chaos-"))
    sys.exit(chaos(args))


if __name__ == "__main__":
    main()
