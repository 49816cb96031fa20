"""Command line: python -m engine {train, sample, runs, export, metrics, doctor, push, pull, publish-space, project}."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

from engine.base import records
from engine.base.formats import CheckpointError
from engine.config import Config, ConfigError, update_from_dotted
from engine.device import DeviceError, detect_device
from engine.hf.errors import HubError
from engine.metrics.errors import MetricUnavailable
from engine.models import get_model, list_models
from engine.presets import PRESETS, SIZE_CHOICES, recipe, recommended
from engine.runs import RunLockedError
from engine.train.guard import DivergenceError
from engine.train.loop import describe_error

EXPORT_FORMATS = ("safetensors", "onnx")
# Errors a user can fix (every subcommand's): one line on stderr, exit 2. ConfigError and DatasetError are
# ValueErrors, file problems OSErrors; HubError and DeviceError name their fix too.
USER_ERRORS = (ValueError, OSError, DeviceError, CheckpointError, DivergenceError, RunLockedError, HubError)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {text}")
    return value


def _nonneg_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be ≥ 0, got {text}")
    return value


def _add_train(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("train", help="train a GAN (or resume a run)")
    p.add_argument("--dataset", help="builtin:faces[:N], a folder of images, a .zip, or a .npz/.npy uint8 array")
    p.add_argument("--model", choices=[m.name for m in list_models()])
    p.add_argument("--resolution", type=int, help="training resolution (the model lists what it supports)")
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--max-steps", type=_positive_int)
    p.add_argument("--max-images", type=_positive_int)
    p.add_argument("--max-seconds", type=_nonneg_float)
    p.add_argument("--run-dir", type=Path, help="run directory (default: a new one under checkpoints/runs)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="start from a named recipe (default: the one recommended for the device)")
    p.add_argument("--size", choices=SIZE_CHOICES, default="auto",
                   help="how the recipe is sized: auto (for this device), a device class, or source (as published)")
    p.add_argument("--name", help="name of the run (its directory under the runs root)")
    p.add_argument("--config", type=Path, help="start from a config.json")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. optim.lr_d=1e-4 or model.options.ngf=32 (JSON values)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.set_defaults(func=cmd_train)


def _add_sample(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sample", help="generate images from a run, checkpoint or exported generator")
    p.add_argument("--run", required=True, type=Path, help="run directory, checkpoint .json or exported folder")
    p.add_argument("--num", type=int, default=64)
    p.add_argument("--out", required=True, type=Path, help=".png (grid), .npz (key 'images') or a directory of PNGs")
    p.add_argument("--seed", type=int, default=0, help="first seed; image i uses seed+i")
    p.add_argument("--truncation", type=float, default=1.0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_sample)


def _add_runs(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("runs", help="list runs with status and progress")
    p.add_argument("--root", type=Path, help="runs directory (default: checkpoints/runs or $GAN_STUDIO_RUNS)")
    p.set_defaults(func=cmd_runs)


def _add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="write a run's EMA generator as model.safetensors + config.json, or as ONNX")
    p.add_argument("--run", required=True, type=Path, help="run directory, checkpoint .json or exported folder")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--format", choices=EXPORT_FORMATS, default="safetensors",
                   help="safetensors (for GAN Studio and PyTorch) or onnx (generator.onnx + README.md + config.json, "
                        "checked against PyTorch with onnxruntime; samples without PyTorch)")
    p.set_defaults(func=cmd_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="GAN Studio engine")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_sample(sub)
    _add_runs(sub)
    _add_export(sub)
    from engine.doctor.cli import add_parser as add_doctor
    from engine.hub.cli import add_parser as add_hub
    from engine.inversion_cli import add_parser as add_project
    from engine.metrics.cli import add_parser as add_metrics

    add_metrics(sub)
    add_doctor(sub)
    add_hub(sub)
    add_project(sub)
    return parser


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(config: Config, pairs: Sequence[str]) -> None:
    """Apply KEY=VALUE overrides; model.options.X sets a model option."""
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {pair!r}")
        value = _parse_value(text)
        if key.startswith("model.options."):
            config.model.options[key.removeprefix("model.options.")] = value
        else:
            update_from_dotted(config, key, value)


def resolve_train_config(args: argparse.Namespace) -> tuple[Config, str | None]:
    """The run's config from --resume's run dir, --config, or a recipe (--preset, else the device's
    recommended one) at --size, plus flags; and for a recipe, a sentence saying which size it applied."""
    note = None
    if args.size != "auto" and (args.resume or args.config):
        raise ConfigError("--size sizes a recipe (--preset, or the recommended one): leave it out with "
                          "--resume or --config")
    if args.resume:
        if not args.run_dir:
            raise ConfigError("--resume needs --run-dir DIR (the run to continue)")
        config = Config.load(args.run_dir / "config.json")
    elif args.config:
        config = Config.load(args.config)
    else:
        device = detect_device(args.device or "auto")
        name = args.preset or recommended(device, args.dataset or "builtin:faces")
        config, applied = recipe(name, device, args.size)
        note = f"recipe {name}{'' if args.preset else ' (recommended for this device and these images)'}: {applied}"
    if args.model and args.model != config.model.name:
        config.model.name, config.model.options = args.model, {}
        config.loss.kind = get_model(args.model).loss or config.loss.kind  # the loss the model is defined with
    flags = {"data.spec": args.dataset, "data.resolution": args.resolution, "train.batch_size": args.batch_size,
             "train.max_steps": args.max_steps, "train.max_images": args.max_images,
             "train.max_seconds": args.max_seconds, "train.device": args.device, "train.seed": args.seed}
    for key, value in flags.items():
        if value is not None:
            update_from_dotted(config, key, value)
    apply_overrides(config, args.set)
    return config, note


def _run_dir(args: argparse.Namespace, config: Config, main_rank: bool) -> Path:
    """--run-dir, else a new directory under the runs root named --name (or after the config). Under
    torchrun the main process creates it and the others use its name."""
    from engine.runs import new_run_dir, runs_root
    from engine.runs.run import check_run_name

    if args.name and args.run_dir:
        raise ConfigError("--name and --run-dir both choose the run directory: give one of them")
    if args.run_dir:
        return args.run_dir
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not args.name:
        raise ConfigError("several processes train one run: give it --run-dir DIR or --name NAME")
    try:
        return new_run_dir(config, name=args.name) if main_rank else runs_root() / check_run_name(args.name)
    except ValueError as exc:
        raise ConfigError(f"--name: {exc}") from None


def cmd_train(args: argparse.Namespace) -> int:
    from engine.train import StopFlag, Trainer

    config, note = resolve_train_config(args)
    config.validate()
    main_rank = os.environ.get("RANK", "0") == "0"
    run_dir = _run_dir(args, config, main_rank)
    if note and main_rank:
        print(note, file=sys.stderr)
    trainer = Trainer(config, run_dir, resume=args.resume)
    bar = None if args.no_progress or not trainer.dist.is_main else _Bar(trainer)
    on_log = bar.update_from if bar else None
    if main_rank:
        print(f"run {run_dir} on {trainer.device}{' (bf16)' if trainer.bf16 else ''}"
              f"{f' × {trainer.dist.world_size} processes' if trainer.dist.active else ''}: "
              f"{len(trainer.data)} images, model {config.model.name}", file=sys.stderr)
    try:
        with StopFlag().installed() as stop:
            state = trainer.train(stop, on_log=on_log)
    finally:
        if bar:
            bar.close()
    if main_rank:
        print(f"{state} at step {trainer.step} ({trainer.images} images); run directory: {run_dir}", file=sys.stderr)
    return 0


class _Bar:
    """tqdm over the run's main limit, fed by the loop's log records."""

    def __init__(self, trainer: Any) -> None:
        from tqdm import tqdm

        t = trainer.config.train
        if t.max_steps:
            self.key, total, done = records.STEP, t.max_steps, trainer.step
        elif t.max_images:
            self.key, total, done = records.IMAGES, t.max_images, trainer.images
        else:
            self.key, total, done = records.STEP, None, trainer.step
        self.bar = tqdm(total=total, initial=done, unit="img" if self.key == records.IMAGES else "step",
                        dynamic_ncols=True)
        self.last = done

    def update_from(self, record: dict[str, Any]) -> None:
        """Move to the training line's step (or images) and show its speed and losses."""
        value = record[self.key]
        self.bar.update(value - self.last)
        self.last = value
        self.bar.set_postfix(img_s=f"{record[records.IMG_PER_SEC]:.0f}", G=f"{record[records.LOSS_G]:.3f}",
                             D=f"{record[records.LOSS_D]:.3f}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from engine.generator import load_generator
    from engine.grid import image_grid, save_png

    if args.num < 1:
        raise ConfigError("--num must be at least 1")
    gen = load_generator(args.run, device=detect_device(args.device))
    images = gen.sample(seeds=range(args.seed, args.seed + args.num), truncation=args.truncation)
    out: Path = args.out
    if out.suffix.lower() == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        save_png(image_grid(images), str(out))
    elif out.suffix.lower() == ".npz":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(out, images=images)
    elif out.suffix == "":
        out.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            save_png(image, str(out / f"seed{args.seed + i:06d}.png"))
    else:
        raise ConfigError(f"--out {out}: use a .png file (grid), a .npz file, or a directory name")
    print(f"wrote {len(images)} images to {out}", file=sys.stderr)
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from engine.runs import list_runs

    runs = list_runs(args.root)
    if not runs:
        print("no runs yet: start one with python -m engine train", file=sys.stderr)
        return 0
    print(f"{'run':<40} {'state':<9} {'step':>8} {'images':>10} {'progress':>8}  model/dataset")
    for run in runs:
        status = run.status()
        try:
            cfg = run.config()
            what = f"{cfg.model.name} {cfg.data.resolution}px {cfg.data.spec}"
        except ConfigError:
            what = "(unreadable config)"
        progress = status.get("progress")
        shown = f"{progress * 100:.0f}%" if isinstance(progress, (int, float)) else "-"
        print(f"{run.name:<40} {status['state']:<9} {status.get('step', 0):>8} {status.get('images', 0):>10} "
              f"{shown:>8}  {what}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    if args.format == "onnx":
        from engine.onnx_export import export_onnx

        exported = export_onnx(args.run, args.out)
        print(f"exported the generator as ONNX ({exported.exporter} exporter) to {args.out}; {exported.parity}",
              file=sys.stderr)
        return 0
    from engine.generator import export_generator

    out = export_generator(args.run, args.out)
    print(f"exported generator to {out}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MetricUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        traceback.print_exc()
        print(f"error: {describe_error(exc)}", file=sys.stderr)
        return 1
