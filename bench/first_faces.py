"""Time to first faces: how soon after pressing Start the recommended recipe draws recognisable faces.

Two measurements, on the device this runs on:

1. Start-to-first-step: ``engine.start_training`` launches the worker exactly as the studio's Start
   button does; the clock stops when the first training record reaches ``metrics.jsonl``. Measured
   with a warm dataset cache (the studio's dataset preview fills it before Start can be pressed) and
   a cold one, on the idle machine and with ``--load`` CPU-burning processes beside it.
2. Quality over time: the recipe trains in this process (the same Trainer the worker runs, with its
   live metric on); every ``--every`` seconds the EMA generator is copied. Afterwards each copy draws
   ``--samples`` images, scored by SWD against as many held-in training images, and a grid is saved.
   Times are "after Start": the worker's start-to-first-step plus the training time since the first
   step. The first time the curve crosses the dataset's "recognisable" threshold (calibrated by eye on
   the saved grids, see docs/benchmarks.md) is printed.

    python bench/first_faces.py [--dataset builtin:faces|cats] [--recipe NAME] [--minutes 4]
                                [--every 30] [--samples 1000] [--load 2] [--out DIR] [--skip-startup]
                                [--set KEY=VALUE ...]

'cats' is ../shared/datasets/afhq_cat64 (1,000 real AFHQ cat faces, 64 px).
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the worker trains (engine/__main__.py)

SHARED_CATS = ROOT.parent / "shared" / "datasets" / "afhq_cat64"
THRESHOLDS = {"builtin:faces": 50.0, "cats": 57.0}  # SWD-1k where samples first look recognisable (by eye)
TARGETS = {"builtin:faces": 120.0, "cats": 480.0}  # issue 13: seconds after Start on 2 idle CPU cores


def dataset_spec(name: str) -> str:
    if name == "cats":
        if not SHARED_CATS.is_dir():
            sys.exit(f"no {SHARED_CATS}: the cats benchmark needs the shared AFHQ cat faces")
        return str(SHARED_CATS)
    return name


@contextmanager
def cpu_load(processes: int) -> Iterator[None]:
    """``processes`` busy loops in other processes for the duration of the block."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def start_to_first_step(config: Any, runs: Path, cold: bool) -> float:
    """Seconds from start_training() until the worker logs its first step (then it is stopped)."""
    import engine
    from engine.base import records

    config = copy.deepcopy(config)
    config.train.log_every, config.train.max_steps = 1, 3
    run = engine.Run(runs / f"startup-{time.time_ns()}")
    env = os.environ.get("GAN_STUDIO_CACHE")
    if cold:
        os.environ["GAN_STUDIO_CACHE"] = tempfile.mkdtemp(prefix="cold-cache-")
    try:
        began = time.perf_counter()
        engine.start_training(config, run.path)
        while not records.train_records(run.metrics()):
            if run.status()["state"] == "failed":
                sys.exit(f"the worker failed: {run.status().get('error')}")
            time.sleep(0.05)
        seconds = time.perf_counter() - began
        while run.is_live():
            time.sleep(0.1)
    finally:
        if env is None:
            os.environ.pop("GAN_STUDIO_CACHE", None)
        else:
            os.environ["GAN_STUDIO_CACHE"] = env
    return seconds


def startup_table(config: Any, load: int) -> dict[tuple[str, str], float]:
    """Start-to-first-step for warm and cold caches, idle and under load."""
    import engine

    engine.load_dataset(config.data.spec, config.data.resolution)  # what the studio's preview does
    runs = Path(tempfile.mkdtemp(prefix="first-faces-runs-"))
    results = {}
    for condition, burners in (("idle", 0), (f"{load} CPU burners", load)):
        with cpu_load(burners):
            for cache in ("warm", "cold"):
                results[(condition, cache)] = start_to_first_step(config, runs, cold=cache == "cold")
                print(f"  start-to-first-step, {condition}, {cache} dataset cache: "
                      f"{results[(condition, cache)]:.1f} s", flush=True)
    return results


def train_with_snapshots(config: Any, every: float, offset: float) -> tuple[list[tuple[float, int, dict]], Any]:
    """Train in this process; copy the EMA generator's weights every ``every`` seconds after Start
    (``offset`` = the worker's start-to-first-step, added to the time since this run's first step)."""
    from engine.train import StopFlag, Trainer

    run_dir = Path(tempfile.mkdtemp(prefix="first-faces-")) / "run"
    trainer = Trainer(config, run_dir)
    snapshots: list[tuple[float, int, dict]] = []
    first_step: list[float] = []

    def on_log(record: dict[str, Any]) -> None:
        now = time.perf_counter()
        if not first_step:
            first_step.append(now)
        after_start = offset + now - first_step[0]
        if after_start >= every * (len(snapshots) + 1):
            weights = {k: v.detach().clone() for k, v in trainer.ema.ema.state_dict().items()}
            snapshots.append((after_start, trainer.images, weights))

    trainer.config.train.log_every = max(1, min(trainer.config.train.log_every, 10))
    trainer.train(StopFlag(), on_log=on_log)
    return snapshots, trainer


def score(snapshots: list[tuple[float, int, dict]], trainer: Any, samples: int, out: Path, name: str
          ) -> list[tuple[float, int, float]]:
    """SWD of each snapshot against ``samples`` training images; a 8×8 grid per snapshot in ``out``."""
    import numpy as np
    import torch

    from engine.grid import image_grid, save_png, to_uint8
    from engine.metrics.evaluate import select_real
    from engine.metrics.swd import swd

    real = select_real(np.asarray(trainer.real_images), samples)
    generator = copy.deepcopy(trainer.ema.ema).cpu().float().eval()
    z = torch.randn(samples, trainer.latent_dim, generator=torch.Generator().manual_seed(123))
    labels = torch.arange(samples) % max(1, trainer.num_classes)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seconds, images, weights in snapshots:
        generator.load_state_dict(weights)
        with torch.no_grad():
            fake = np.concatenate([to_uint8(generator(z[i:i + 100], labels[i:i + 100]))
                                   for i in range(0, samples, 100)])
        value = swd(real, fake)
        save_png(image_grid(fake[:64], columns=8), str(out / f"{name}-{int(seconds):04d}s.png"))
        rows.append((seconds, images, value))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="builtin:faces", help="builtin:faces, cats, or any engine spec")
    parser.add_argument("--recipe", help="a recipe name (default: the recommended one for the device)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between generator snapshots")
    parser.add_argument("--samples", type=int, default=1000, help="generated and real images per SWD")
    parser.add_argument("--load", type=int, default=2, help="CPU-burning processes for the loaded start-up")
    parser.add_argument("--train-load", type=int, default=0, help="CPU-burning processes while training")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value of the recipe, as in `python -m engine train --set`")
    parser.add_argument("--threshold", type=float, help="recognisable SWD (default: calibrated per dataset)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "first_faces")
    parser.add_argument("--skip-startup", action="store_true", help="no start-to-first-step measurement")
    args = parser.parse_args()

    import engine
    from engine.cli import apply_overrides

    device = engine.detect_device(args.device)
    spec = dataset_spec(args.dataset)
    name = args.recipe or engine.recommended(device, spec)
    config, applied = engine.recipe(name, device)
    config.data.spec = spec
    config.train.device = args.device
    apply_overrides(config, args.set)
    print(f"recipe {name} on {engine.device_summary(args.device)}, dataset {args.dataset}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}. {applied}{' Overrides: ' + ', '.join(args.set) if args.set else ''}",
          flush=True)

    offset = 0.0
    if not args.skip_startup:
        startup = startup_table(config, args.load)
        offset = startup[("idle", "warm")]
    train_config = copy.deepcopy(config)
    train_config.train.max_seconds = args.minutes * 60
    train_config.train.max_steps = train_config.train.max_images = 0
    train_config.train.checkpoint_every = 10**9
    with cpu_load(args.train_load):
        snapshots, trainer = train_with_snapshots(train_config, args.every, offset)
    threshold = args.threshold or THRESHOLDS.get(args.dataset)
    print(f"trained {trainer.images:,} images in {trainer.train_seconds:.0f} s "
          f"({trainer.images / max(trainer.train_seconds, 1e-9):.0f} img/s, {args.train_load} burners); "
          f"SWD-{args.samples} against held-in training images:", flush=True)
    print(f"{'after Start':>12} {'images':>9} {'SWD':>8}")
    crossed = None
    slug = re.sub(r"[^\w-]+", "_", Path(args.dataset).name)
    for seconds, images, value in score(snapshots, trainer, args.samples, args.out, slug):
        print(f"{seconds:>10.0f} s {images:>9,} {value:>8.1f}", flush=True)
        if crossed is None and threshold is not None and value <= threshold:
            crossed = seconds
    if threshold is None:
        print("no calibrated 'recognisable' threshold for this dataset: judge the grids (or pass --threshold)")
    else:
        target = TARGETS.get(args.dataset)
        verdict = "not reached" if crossed is None else f"{crossed:.0f} s after Start"
        goal = f" (target ≤ {target:.0f} s)" if target else ""
        print(f"recognisable (SWD ≤ {threshold:g}): {verdict}{goal}")
    print(f"grids: {args.out}")


if __name__ == "__main__":
    main()
