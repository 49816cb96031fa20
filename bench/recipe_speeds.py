"""Training speed of every recipe at this device's size: the table behind the studio's expectations.

Each recipe trains on the built-in faces for ``--seconds`` (after two warm-up steps) in a fresh
process, at the size the studio and the CLI apply on this device (engine.presets.SIZES). The table
is printed; with ``--write`` the speeds go to engine/speeds.json under this device's class, which
``engine.expectation`` shows before Start when a configuration has a recipe's sized shape.

    python bench/recipe_speeds.py [--seconds 30] [--recipes fastgan-64,quick-faces-32] [--device auto] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the worker trains (engine/__main__.py)

DATASET = "builtin:faces:2000"
WARMUP_STEPS = 2


def measure_one(name: str, device: str, seconds: float) -> dict:
    """img/s of recipe ``name`` at the device's size (runs in its own process)."""
    import torch

    from engine.device import detect_device
    from engine.presets import recipe
    from engine.train import Trainer

    config, applied = recipe(name, detect_device(device))
    config.data.spec, config.train.device = DATASET, device
    with tempfile.TemporaryDirectory(prefix=f"bench-recipe-{name}-") as run_dir:
        trainer = Trainer(config, run_dir)
        for _ in range(WARMUP_STEPS):
            trainer.train_step()
        steps, start = 0, time.perf_counter()
        while steps < 2 or time.perf_counter() - start < seconds:
            trainer.train_step()
            steps += 1
        if trainer.device.type == "cuda":
            torch.cuda.synchronize(trainer.device)
        elapsed = time.perf_counter() - start
    return {"recipe": name, "img_per_sec": steps * config.train.batch_size / elapsed, "steps": steps,
            "size": applied}


def machine(device: str) -> str:
    """E.g. 'CPU, 2 cores (x86_64), torch 2.14.1'."""
    import torch

    from engine.device import device_summary

    return f"{device_summary(device)} ({platform.machine()}), torch {torch.__version__}"


def write_table(device_class: str, rows: list[dict], measured_on: str, path: Path) -> None:
    """Merge ``rows`` into ``path`` under ``device_class`` (other classes and recipes are kept)."""
    table = json.loads(path.read_text()) if path.is_file() else {}
    entries = table.setdefault(device_class, {})
    for row in rows:
        entries[row["recipe"]] = {"img_per_sec": round(row["img_per_sec"], 2), "measured_on": measured_on,
                                  "date": time.strftime("%Y-%m-%d")}
    table[device_class] = dict(sorted(entries.items()))
    path.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")


def main() -> None:
    from engine.presets import PRESETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="timed training per recipe")
    parser.add_argument("--recipes", default=",".join(PRESETS), help="comma-separated recipe names")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--write", action="store_true", help="store the speeds in engine/speeds.json")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.device, args.seconds)))
        return

    from engine.device import detect_device
    from engine.expectations import SPEEDS_TABLE
    from engine.presets import device_class

    names = args.recipes.split(",")
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        parser.error(f"unknown recipe(s) {', '.join(unknown)}: choose from {', '.join(PRESETS)}")
    device = detect_device(args.device)
    size, measured_on = device_class(device), machine(str(device))
    print(f"device: {measured_on}; class {size}; {args.seconds:.0f} s per recipe; {time.strftime('%Y-%m-%d')}",
          flush=True)
    rows = []
    for name in names:
        done = subprocess.run([sys.executable, __file__, "--one", name, "--device", str(device),
                               "--seconds", str(args.seconds)], capture_output=True, text=True)
        if done.returncode:
            print(f"{name}: failed\n{done.stderr[-2000:]}", flush=True)
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"{name:>28}: {rows[-1]['img_per_sec']:8.1f} img/s ({rows[-1]['size']})", flush=True)
    print("\n| recipe | img/s | size |\n|---|---:|---|")
    for row in rows:
        print(f"| {row['recipe']} | {row['img_per_sec']:.1f} | {row['size']} |")
    if args.write and rows:
        write_table(size, rows, measured_on, SPEEDS_TABLE)
        print(f"wrote {len(rows)} speeds to {SPEEDS_TABLE}")


if __name__ == "__main__":
    main()
