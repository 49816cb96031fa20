"""`python -m engine metrics`: evaluate a run's generator, print a table, append the results to the run."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.base import records
from engine.data import load_dataset
from engine.device import detect_device
from engine.generator import load_generator
from engine.metrics.evaluate import Results, evaluate
from engine.metrics.features import INCEPTION
from engine.metrics.keys import display_label, metric_key, parse_count
from engine.metrics.registry import get_metric, list_metrics
from engine.metrics.weights import CLI_FLAG, ENV_VAR
from engine.runs import Run
from engine.base.files import read_json

DEFAULT_METRICS = "fid,kid,is,pr,swd,nn"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `metrics` subcommand."""
    known = "; ".join(f"{cls.name}: {cls.description}" for cls in list_metrics())
    p = subparsers.add_parser(
        "metrics",
        help="evaluate a run's generator (FID, KID, IS, precision/recall, SWD, nearest-neighbour distance)",
        description=f"Metrics: {known}. Results are printed and appended to the run's metrics.jsonl.",
    )
    p.add_argument("--run", required=True, type=Path, help="run directory")
    p.add_argument("--checkpoint", help="checkpoint .json, or 'latest' (default) / 'best' / a name in the run")
    p.add_argument("--metrics", default=DEFAULT_METRICS, help=f"comma list (default {DEFAULT_METRICS})")
    p.add_argument("--num", type=_count, help="generated samples, e.g. 2000, 10k, or 50k for the full protocol "
                   "(default: the run's metrics.num_samples)")
    p.add_argument(CLI_FLAG, dest="inception_weights", default="",
                   help=f"path to the Inception weights for offline machines (else the run's "
                   f"metrics.inception_weights, ${ENV_VAR}, the cache, or a download)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=_count, default=64)
    p.add_argument("--feature-net", default=INCEPTION, help="registered feature network (default inception)")
    p.add_argument("--no-write", action="store_true", help="print only; leave the run's metrics.jsonl alone")
    p.set_defaults(func=run_metrics)


def _count(text: str) -> int:
    try:
        return parse_count(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_metrics(args: argparse.Namespace) -> int:
    """Exit 0 when every metric ran; engine.cli.main exits 1 when one could not (MetricUnavailable) and 2
    for bad input."""
    run = Run(args.run)
    if not run.exists():
        raise ValueError(f"{args.run} is not a run directory (no config.json)")
    names = [name.strip() for name in args.metrics.split(",") if name.strip()]
    for name in names:
        get_metric(name)
    config = run.config()
    num = args.num or config.metrics.num_samples
    checkpoint = _checkpoint(run, args.checkpoint)
    device = detect_device(args.device)
    generator = load_generator(checkpoint, device=device)
    dataset = load_dataset(config.data.spec, config.data.resolution)

    def note(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    start = time.perf_counter()
    results = evaluate(
        names,
        lambda n, first: generator.sample(seeds=range(first, first + n)),
        dataset.images,
        num,
        dataset_key=dataset.fingerprint,
        device=device,
        inception_weights=args.inception_weights or config.metrics.inception_weights,
        feature_net=args.feature_net,
        batch_size=args.batch_size,
        log=note,
    )
    meta = read_json(checkpoint)
    title = (f"{run.name} / {checkpoint.stem} (step {meta.get('step')}): {num} generated vs "
             f"{min(num, len(dataset.images))} real images, {time.perf_counter() - start:.1f} s on {device}")
    print(_table(results, num, title))
    if results and not args.no_write:
        line = records.EvalRecord(meta.get("step", 0), meta.get("images", 0), meta.get("train_seconds", 0.0),
                                  dict(results), source=records.CLI_SOURCE, checkpoint=checkpoint.name)
        run.append_metrics(line.to_dict())
    for name, reason in results.errors.items():
        print(f"error: {name} not computed: {reason}", file=sys.stderr)
    return 1 if results.errors else 0


def _checkpoint(run: Run, choice: str | None) -> Path:
    if choice in (None, "latest"):
        latest = run.latest_checkpoint()
        if latest is None:
            raise ValueError(f"run {run.path} has no checkpoint yet")
        return latest
    checkpoints_dir = run.checkpoints_dir
    for candidate in (Path(choice), checkpoints_dir / choice, checkpoints_dir / f"{choice}.json"):
        if candidate.is_file() and candidate.suffix == ".json":
            return candidate
    raise ValueError(f"no checkpoint {choice!r} (give a .json path, 'latest', 'best' or a name in {checkpoints_dir})")


def _table(results: Results, num: int, title: str) -> str:
    rows = [(display_label(key), f"{value:.4g}") for key, value in results.items()]
    rows += [(display_label(metric_key(output, num)), "unavailable")
             for name in results.errors for output in get_metric(name).outputs]
    width = max([len(label) for label, _ in rows] + [6])
    return "\n".join([title, *(f"  {label:<{width}}  {value}" for label, value in rows)])
