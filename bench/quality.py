"""Quality of the zoo in FID: every recipe trains for the same budget on the same images through the
CLI, then `python -m engine metrics` scores its EMA generator with FID, KID and SWD on a fixed number
of generated images against the cached real statistics; a grid of samples is saved for each.

Recipes run at the size the studio and the CLI apply on this device (`engine.presets.recipe`), with only
the dataset and the budget set. The budget is wall-clock seconds; with ``--pace idle`` (the default
where engine/speeds.json knows the recipe) it is converted into images at the recipe's idle speed on
this device class, so a busy machine slows the benchmark down without changing its result.

    python bench/quality.py [--seconds 120] [--datasets builtin:faces,cats] [--recipes dcgan,quick-faces-32]
                            [--samples 1000] [--out DIR] [--write]

``--recipes`` takes recipe names or model names (a model stands for the recipe it declares); the
default is every model's recipe plus the recipes recommended on this device. Runs finished in
``--out`` are reused, so an interrupted benchmark picks up where it stopped. ``--write`` puts the table
into docs/benchmarks.md and the best recipe per kind of images into engine/quality.json, which
`engine.presets.recommended` follows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the worker trains (engine/__main__.py)

from bench.zoo import RECIPES, dataset_spec  # noqa: E402  (importable once the path is set)
from engine.metrics.keys import format_count, metric_key  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
GRIDS = ROOT / "docs" / "images" / "quality"
METRICS = ("fid", "kid", "swd")
GRID_SAMPLES = 16


def default_recipes(device_class: str) -> list[str]:
    """Every model's declared recipe, then those recommended on ``device_class`` (by default or measured)."""
    from engine.presets import RECOMMENDED, RECOMMENDED_DEFAULTS

    recommended = [*RECOMMENDED_DEFAULTS[device_class].values(), *RECOMMENDED[device_class].values()]
    return list(dict.fromkeys([*RECIPES.values(), *recommended]))


def recipe_names(text: str, device_class: str) -> list[str]:
    """Recipe names from a comma list of recipe or model names ('' = the default list)."""
    from engine.presets import PRESETS

    if not text:
        return default_recipes(device_class)
    names = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        if item not in PRESETS and item not in RECIPES:
            raise SystemExit(f"unknown recipe or model {item!r}: choose from {', '.join(sorted(PRESETS))}")
        names.append(item if item in PRESETS else RECIPES[item])
    return names


def budget_args(recipe: str, device_class: str, seconds: float, pace: str) -> tuple[list[str], float | None]:
    """The CLI's stop flags for ``seconds`` of training, and the idle img/s they assume (None: wall clock)."""
    from engine.expectations import SPEEDS_TABLE

    if pace == "wall":
        return ["--max-seconds", str(seconds)], None
    entry = json.loads(SPEEDS_TABLE.read_text()).get(device_class, {}).get(recipe)
    if not entry:
        raise SystemExit(f"engine/speeds.json has no {device_class} speed for {recipe}: measure it with "
                         f"python bench/recipe_speeds.py --recipes {recipe} --write, or use --pace wall")
    speed = float(entry["img_per_sec"])
    return ["--max-images", str(max(1, math.floor(speed * seconds)))], speed


def train(recipe: str, spec: str, run_dir: Path, stop: list[str], device: str) -> str | None:
    """Train ``recipe`` on ``spec`` into ``run_dir`` with the CLI unless it finished there already; the
    CLI's last error line when it refused."""
    from engine.runs import Run

    run = Run(run_dir)
    if run.exists() and run.status().get("state") == "finished":
        return None
    trained = subprocess.run([sys.executable, "-m", "engine", "train", "--preset", recipe, "--dataset", spec,
                              "--run-dir", str(run_dir), "--device", device, "--no-progress", *stop],
                             cwd=ROOT, capture_output=True, text=True)
    return _last_line(trained.stderr) if trained.returncode else None


def score(run_dir: Path, samples: int, device: str) -> dict[str, Any]:
    """FID, KID and SWD of the run's EMA generator from `python -m engine metrics` (reused when the run
    has them already), with its images and training seconds; {"error": …} when the CLI could not."""
    from engine.base import records
    from engine.runs import Run

    run = Run(run_dir)
    keys = [metric_key(name, samples) for name in METRICS]
    scores = _latest_scores(run, keys)
    if scores is None:
        scored = subprocess.run([sys.executable, "-m", "engine", "metrics", "--run", str(run_dir), "--metrics",
                                 ",".join(METRICS), "--num", str(samples), "--device", device],
                                cwd=ROOT, capture_output=True, text=True)
        scores = _latest_scores(run, keys)
        if scores is None:
            return {"error": _last_line(scored.stderr or scored.stdout)}
    status = run.status()
    return {"images": int(status.get(records.IMAGES) or 0), "train_seconds": float(status.get("train_seconds") or 0),
            **{name: scores[key] for name, key in zip(METRICS, keys)}}


def _latest_scores(run: Any, keys: list[str]) -> dict[str, float] | None:
    """The last CLI evaluation of the run when it holds every key in ``keys``."""
    from engine.base import records

    found: dict[str, float] = {}
    for record in run.metrics():
        if record.get("kind") == records.EVAL and record.get("source") == records.CLI_SOURCE:
            found = {key: record[key] for key in keys if key in record}
    return found if len(found) == len(keys) else None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "failed without a message"


def save_grid(run_dir: Path, target: Path) -> None:
    """A 4×4 grid of the run's EMA generator (seeds 0-15)."""
    from engine import load_generator
    from engine.grid import image_grid, save_png

    generator = load_generator(run_dir, "cpu")
    labels = max(1, generator.num_classes)
    images = generator.sample(seeds=range(GRID_SAMPLES), labels=[i % labels for i in range(GRID_SAMPLES)])
    target.parent.mkdir(parents=True, exist_ok=True)
    save_png(image_grid(images, columns=4), str(target))


def table(rows: list[dict[str, Any]], samples: int) -> str:
    """The Markdown table; the best FID of each dataset in bold."""
    n = format_count(samples)
    head = ["dataset", "recipe (model)", "px", "images", "idle img/s", f"FID-{n}", f"KID-{n} ×10³", f"SWD-{n}",
            "samples"]
    best = {}
    for row in rows:
        if "fid" in row and row["fid"] < best.get(row["dataset"], math.inf):
            best[row["dataset"]] = row["fid"]
    lines = ["| " + " | ".join(head) + " |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        name = f"`{row['recipe']}` ({row['model']})"
        if "error" in row:
            lines.append(f"| {row['dataset']} | {name} | {row['px']} | – | – | – | – | – | {row['error']} |")
            continue
        fid = f"{row['fid']:.1f}"
        speed = f"{row['speed']:.0f}" if row.get("speed") else "wall"
        lines.append(" | ".join([
            f"| {row['dataset']}", name, str(row["px"]), f"{row['images']:,}", speed,
            f"**{fid}**" if row["fid"] == best[row["dataset"]] else fid, f"{1e3 * row['kid']:.1f}",
            f"{row['swd']:.1f}", f"[grid](images/quality/{row['grid']})" + " |"]))
    return "\n".join(lines)


def best_recipes(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per kind of images ('builtin' / 'photos'): the recipe with the lowest FID at the budget."""
    from engine.presets import images_kind

    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        kind = images_kind(row["spec"])
        if "fid" in row and row["fid"] < best.get(kind, {}).get("fid", math.inf):
            best[kind] = {"recipe": row["recipe"], "fid": round(row["fid"], 2), "dataset": row["dataset"]}
    return best


def write_docs(section: str, device_class: str) -> None:
    """Replace this device class's quality section in docs/benchmarks.md (between its markers)."""
    start, end = f"<!-- quality:{device_class}:start -->", f"<!-- quality:{device_class}:end -->"
    text = DOCS.read_text()
    if start not in text:
        raise SystemExit(f"{DOCS} has no {start} … {end} markers for the table")
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    DOCS.write_text(f"{head}{start}\n{section}\n{end}{tail}")


def write_recommendation(device_class: str, best: dict[str, dict[str, Any]], note: dict[str, Any]) -> None:
    """Record the best recipe per kind of images for ``device_class`` in engine/quality.json."""
    from engine.presets import QUALITY_TABLE

    data = json.loads(QUALITY_TABLE.read_text()) if QUALITY_TABLE.exists() else {}
    data[device_class] = {kind: {**entry, **note} for kind, entry in best.items()}
    QUALITY_TABLE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="training budget per recipe")
    parser.add_argument("--datasets", default="builtin:faces,cats",
                        help="engine specs, or cats / cats:N for ../shared/datasets/afhq_cat64")
    parser.add_argument("--recipes", default="", help="comma list of recipes or models (default: the zoo's "
                        "recipes and this device's recommended ones)")
    parser.add_argument("--pace", choices=["idle", "wall"], default="idle",
                        help="idle: the budget in images at engine/speeds.json's idle speed; wall: in seconds")
    parser.add_argument("--samples", type=int, default=1000, help="generated images per score")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("/tmp/gan-studio-quality"), help="where the runs go")
    parser.add_argument("--train-only", action="store_true", help="train the runs, score nothing yet")
    parser.add_argument("--write", action="store_true",
                        help="write the table into docs/benchmarks.md and the recommendation into engine/quality.json")
    args = parser.parse_args()

    import torch

    from engine.device import detect_device, device_summary
    from engine.presets import PRESETS, device_class, recipe

    device = detect_device(args.device)
    kind = device_class(device)
    summary = (f"{device_summary(args.device)}, torch {torch.__version__.split('+')[0]}, "
               f"{time.strftime('%Y-%m-%d')}")
    print(f"{summary}; {args.seconds:.0f} s per recipe ({args.pace} pace); {args.samples} samples", flush=True)
    jobs = []
    for name in args.datasets.split(","):
        spec = dataset_spec(name)
        if spec is None:
            print(f"skipping {name}: it is not on this machine", flush=True)
            continue
        for recipe_name in recipe_names(args.recipes, kind):
            stop, speed = budget_args(recipe_name, kind, args.seconds, args.pace)
            jobs.append({"dataset": name, "spec": spec, "recipe": recipe_name, "model": PRESETS[recipe_name].model.name,
                         "px": recipe(recipe_name, device)[0].data.resolution, "speed": speed, "stop": stop,
                         "run_dir": args.out / name.replace(":", "-").replace("/", "-") / recipe_name})
    for job in jobs:
        started = time.perf_counter()
        error = train(job["recipe"], job["spec"], job["run_dir"], job["stop"], str(device))
        if error:
            job["error"] = error
        print(f"trained {job['dataset']} {job['recipe']}: {error or 'ok'} [{time.perf_counter() - started:.0f} s]",
              flush=True)
    if args.train_only:
        return
    rows = []
    for job in jobs:
        row = {key: value for key, value in job.items() if key not in ("stop", "run_dir")}
        if "error" not in row:
            row.update(score(job["run_dir"], args.samples, str(device)))
        if "error" not in row:
            row["grid"] = f"{row['dataset'].replace(':', '-')}-{row['recipe']}.png"
            save_grid(job["run_dir"], GRIDS / row["grid"])
        rows.append(row)
        print(f"{row['dataset']:>14} {row['recipe']:>28}: " + (row["error"] if "error" in row else
              f"{row['images']:>7,} images, FID {row['fid']:.1f}, KID {1e3 * row['kid']:.1f}e-3, SWD {row['swd']:.1f}"),
              flush=True)
    command = "python bench/quality.py " + " ".join(sys.argv[1:])
    best = best_recipes(rows)
    section = "\n".join([
        f"### {summary}", "", "```", command, "```", "",
        f"Budget {args.seconds:.0f} s of training per recipe"
        + (" at the idle speed of engine/speeds.json" if args.pace == "idle" else " (wall clock)")
        + f"; each recipe at its {kind} size; scores on {args.samples} generated images of the EMA generator.",
        "", table(rows, args.samples), "",
        "Best FID per kind of images (what `engine.presets.recommended` follows on this device class): "
        + "; ".join(f"{k}: `{v['recipe']}` (FID {v['fid']})" for k, v in sorted(best.items())) + "."])
    print(section)
    if args.write:
        write_docs(section, kind)
        write_recommendation(kind, best, {"seconds": args.seconds, "samples": args.samples,
                                          "date": time.strftime("%Y-%m-%d"), "command": command})


if __name__ == "__main__":
    main()
