"""GAN inversion: reconstruction error against Adam steps, on photos the generator trained on and photos it never saw.

For each step count, ``engine.inversion.project`` runs from scratch (its learning rate decays over the steps it is
given) on ``--count`` held-in photos (from the run's training folder) and as many held-out ones (a folder of the
same kind of photos kept out of training), with the default weights (pixel + D-feature + prior). It prints, per step
count, the mean absolute pixel error (0..1) and the D-feature loss of the reconstructions, and the seconds taken;
then the same for random latents (the mean over 16 samples) and a pixel-only projection. The reconstructions of
the largest step count are saved as a grid (rows: held-in photos, their reconstructions, held-out photos, theirs).

    python bench/inversion.py --run /tmp/inv-run --held-out /tmp/cats-heldout [--count 8]
                              [--steps 0,25,50,100,200,400] [--restarts 4] [--pixel-only-steps 100]
                              [--out docs/images/inversion_cats.png]

To make the folders: copy the first 900 files of ../shared/datasets/afhq_cat64 (sorted by name) to one folder,
the last 100 to another, and train on the first for a few minutes:
``python -m engine train --preset quick-photos-64 --dataset /tmp/cats900 --max-seconds 300 --run-dir /tmp/inv-run``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the CLI runs (engine/__main__.py)

import numpy as np  # noqa: E402  (after the OpenMP setting)
import torch  # noqa: E402

from engine.data import load_dataset  # noqa: E402
from engine.discriminator import load_discriminator  # noqa: E402
from engine.generator import load_generator  # noqa: E402
from engine.grid import image_grid, save_png  # noqa: E402
from engine.inversion import Weights, feature_distance, project  # noqa: E402
from engine.runs import Run  # noqa: E402


def pick(spec: str, resolution: int, count: int) -> np.ndarray:
    """``count`` images of a folder, a fixed random choice."""
    images = load_dataset(spec, resolution).images
    return images[np.sort(np.random.default_rng(0).choice(len(images), size=count, replace=False))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a run directory (G and D from its latest checkpoint)")
    parser.add_argument("--held-out", required=True, help="a folder of photos the run did not train on")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--steps", default="0,25,50,100,200,400")
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument("--pixel-only-steps", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "inversion_cats.png")
    args = parser.parse_args()

    gen, disc = load_generator(args.run), load_discriminator(args.run)
    run = Run(args.run)
    sets = {"held-in": pick(run.config().data.spec, gen.resolution, args.count),
            "held-out": pick(args.held_out, gen.resolution, args.count)}
    status = run.status()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"load {os.getloadavg()[0]:.1f}; run {args.run}: {gen.model_name} {gen.resolution} px, "
          f"{status.get('images', 0):,} images ({status.get('train_seconds', 0):.0f} s of training)", flush=True)
    print("| steps | held-in pixel error | held-in D-feature loss | held-out pixel error | held-out D-feature loss | "
          "seconds (both sets) |")
    print("| --- | --- | --- | --- | --- | --- |")
    random = gen.sample(seeds=range(16))
    cells = []
    for images in sets.values():
        errors = np.abs(random[:, None].astype(np.float32) - images[None]).mean(axis=(2, 3, 4)) / 255
        pairs = np.repeat(random, len(images), axis=0), np.tile(images, (len(random), 1, 1, 1))  # every pair
        features = feature_distance(disc, *pairs)
        cells += [f"{errors.mean():.3f}", f"{features.mean():.3f}"]
    print(f"| random latent (mean of 16) | {' | '.join(cells)} | |", flush=True)
    last: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    variants = [(int(s), Weights(), f"{int(s)}") for s in args.steps.split(",")]
    variants.append((args.pixel_only_steps, Weights(feature=0), f"{args.pixel_only_steps}, pixel loss only"))
    for steps, weights, label in variants:
        began, cells = time.perf_counter(), []
        for name, images in sets.items():
            result = project(gen, images, disc if weights.feature else None, steps=steps, restarts=args.restarts,
                             weights=weights, seed=0)
            features = feature_distance(disc, result.reconstructions, images)
            cells += [f"{result.errors.mean():.3f}", f"{features.mean():.3f}"]
            if weights.feature:
                last[name] = images, result.reconstructions
        print(f"| {label} | {' | '.join(cells)} | {time.perf_counter() - began:.0f} |", flush=True)
    rows = [row for images, reconstructions in last.values() for row in (images, reconstructions)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_png(image_grid(np.concatenate(rows), columns=args.count), str(args.out))
    print(f"reconstructions after {variants[-2][0]} steps: {args.out}")


if __name__ == "__main__":
    main()
