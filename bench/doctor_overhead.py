"""The training doctor's overhead per step: the same run with the doctor on and off, taking turns.

    python bench/doctor_overhead.py [--recipe quick-faces-32] [--dataset SPEC] [--steps 400] [--rounds 3]
                                    [--threads N]

Each round trains the recipe (sized for this device, on --dataset, default the built-in faces; live metric off) for --steps steps
twice from scratch, once without and once with the doctor, in alternating order, and reads the loop's own
time (train_seconds: the steps, logging and grids, start-up excluded). It also times the doctor's own calls
in the runs with it (the probe at each grid, its one-time reference measures at the first grid, and the
detectors at each record), which is the overhead without the run-to-run noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.device import detect_device, device_summary  # noqa: E402
from engine.doctor import Doctor, Probe  # noqa: E402
from engine.presets import recipe  # noqa: E402
from engine.train import Trainer  # noqa: E402

Timings = dict[str, list[float]]


def timed(timings: Timings, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, adding the seconds of each call to ``timings[name]``."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            timings[name].append(time.perf_counter() - start)
    return wrapper


def train_once(name: str, dataset: str, steps: int, doctor: bool, root: Path, timings: Timings) -> float:
    """Milliseconds per step of the loop's own time, the doctor on or off."""
    config, _ = recipe(name, detect_device("auto"))
    config.data.spec = dataset
    config.train.max_steps, config.train.checkpoint_every = steps, steps
    config.metrics.live_samples = 0
    config.doctor.enabled = doctor
    trainer = Trainer(config, root / f"{'on' if doctor else 'off'}-{time.monotonic_ns()}")
    if trainer.doctor is not None:
        trainer.doctor.observe = timed(timings, "detectors", trainer.doctor.observe)  # type: ignore[method-assign]
    trainer.train()
    return 1000 * trainer.train_seconds / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="quick-faces-32")
    parser.add_argument("--dataset", default="builtin:faces",
                        help="images (builtin:faces:5000: the largest dataset the nearest-image check runs on)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: its default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{device_summary()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f}")
    timings: Timings = defaultdict(list)
    Doctor.probe = timed(timings, "probe", Doctor.probe)  # type: ignore[method-assign]
    Probe.__init__ = timed(timings, "references", Probe.__init__)  # type: ignore[method-assign]
    ms: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="doctor-overhead-") as folder:
        for round_ in range(args.rounds):
            for doctor in ((False, True) if round_ % 2 == 0 else (True, False)):
                ms[doctor].append(train_once(args.recipe, args.dataset, args.steps, doctor, Path(folder), timings))
                print(f"round {round_ + 1}, doctor {'on ' if doctor else 'off'}: {ms[doctor][-1]:.2f} ms/step")
    off, on = statistics.median(ms[False]), statistics.median(ms[True])
    steps = args.steps * args.rounds
    total = {name: sum(values) for name, values in timings.items()}
    total["probe"] -= total["references"]  # the probe's first call takes the reference measures
    own = {name: 1000 * value / steps for name, value in total.items()}
    print(f"\n{args.recipe} on {args.dataset}, {args.steps} steps × {args.rounds} rounds: median {off:.2f} ms/step "
          f"without the doctor, {on:.2f} with it ({100 * (on - off) / off:+.1f} %)")
    print("the doctor's own time per step: " + ", ".join(f"{name} {value:.3f} ms" for name, value in own.items())
          + f" = {sum(own.values()):.3f} ms ({100 * sum(own.values()) / off:.2f} % of a step)")
    print(f"calls: {len(timings['probe'])} probes ({1000 * statistics.median(timings['probe']):.1f} ms each, "
          f"median), {len(timings['detectors'])} records, reference measures "
          f"{1000 * statistics.median(timings['references']):.0f} ms once per run")
    print(f"load average after timing: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
