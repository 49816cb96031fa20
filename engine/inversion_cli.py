"""`python -m engine project`: find the latents a generator needs to draw given photos (GAN inversion)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from engine.device import detect_device
from engine.discriminator import NoDiscriminatorError, load_discriminator
from engine.generator import load_generator
from engine.grid import save_png
from engine.inversion import DEFAULT_RESTARTS, DEFAULT_STEPS, Weights, project, read_photo


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `project` subcommand."""
    p = subparsers.add_parser("project", help="find latents whose samples match photos (GAN inversion)")
    p.add_argument("--run", required=True, help="run directory or checkpoint .json (an exported generator or "
                   "hf:owner/name works too, with the pixel loss only: it has no discriminator)")
    p.add_argument("--image", required=True, action="append", type=Path, help="a photo; repeat for several")
    p.add_argument("--out", required=True, type=Path, help=".npz file for the latents (reconstructions are "
                   "written next to it as PNGs)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--restarts", type=int, default=DEFAULT_RESTARTS, help="random starts per photo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=0.05, help="Adam's learning rate (decays to 0 along a cosine)")
    p.add_argument("--feature-weight", type=float, default=Weights.feature,
                   help="weight of the discriminator-feature (perceptual) loss; 0 for pixels only")
    p.add_argument("--prior-weight", type=float, default=Weights.prior,
                   help="weight of the prior that keeps z typical of N(0, I)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_project)


class _Printer:
    """Progress on stderr, about ten lines in all."""

    def __init__(self) -> None:
        self.shown = 0

    def __call__(self, done: int, total: int, error: float) -> None:
        if done * 10 // total > self.shown or done == total:
            self.shown = done * 10 // total
            print(f"step {done}/{total}  mean pixel error {error:.4f}", file=sys.stderr)


def cmd_project(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.suffix.lower() != ".npz":
        raise ValueError(f"--out {out}: give a .npz file name for the latents")
    if args.steps < 0 or args.restarts < 1:
        raise ValueError("--steps must be ≥ 0 and --restarts ≥ 1")
    photos = [read_photo(path) for path in args.image]
    device = detect_device(args.device)
    generator = load_generator(args.run, device=device)
    try:
        discriminator = load_discriminator(args.run, device=device) if args.feature_weight > 0 else None
    except NoDiscriminatorError as exc:
        print(f"note: {exc}; projecting with the pixel loss only", file=sys.stderr)
        discriminator = None
    weights = Weights(feature=args.feature_weight, prior=args.prior_weight)
    result = project(generator, photos, discriminator, steps=args.steps, restarts=args.restarts, lr=args.lr,
                     weights=weights, seed=args.seed, callback=_Printer())
    out.parent.mkdir(parents=True, exist_ok=True)
    names = [path.name for path in args.image]
    arrays = {"latents": result.latents.numpy(), "labels": np.asarray(result.labels), "errors": result.errors,
              "images": np.asarray(names)}
    if result.feature_errors is not None:
        arrays["feature_errors"] = result.feature_errors
    np.savez(out, allow_pickle=False, **arrays)
    for i, (path, image, error) in enumerate(zip(args.image, result.reconstructions, result.errors)):
        png = out.with_name(f"{out.stem}-{i}-{path.stem}.png")
        save_png(image, str(png))
        extra = f", D-feature loss {result.feature_errors[i]:.4f}" if result.feature_errors is not None else ""
        print(f"{path.name}: mean pixel error {error:.4f}{extra} -> {png}", file=sys.stderr)
    print(f"wrote {len(photos)} latents to {out}; mean pixel error {result.errors.mean():.4f} "
          "(0 = identical, 1 = opposite)", file=sys.stderr)
    return 0
