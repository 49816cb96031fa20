"""Model zoo benchmark: every model trains for the same wall-clock budget on the same images, then
its EMA generator is scored (SWD always; FID too when the Inception weights are available).

Each model runs from the recipe it declares (ModelSettings.recipe, collected in RECIPES; on a CPU at the
recipe's CPU size, engine.presets.SIZES, as the studio and the CLI run it) in a fresh process, so peak memory
is its own:
CUDA peak allocated memory on a GPU, peak resident memory of the process on a CPU.

    python bench/zoo.py [--seconds 120] [--resolution 64] [--device auto] [--models dcgan,fastgan]
                        [--datasets builtin:faces,cats,cats:300] [--size auto] [--samples 1000]

Dataset names: 'builtin:faces' (any engine spec works), 'cats' = ../shared/datasets/afhq_cat64 when
that folder exists, 'cats:N' = its first N images (the few-hundred-images case).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.models import get_model, list_models  # noqa: E402  (importable once the path is set)

SHARED_CATS = ROOT.parent / "shared" / "datasets" / "afhq_cat64"
RECIPES = {m.name: m.settings.recipe_name for m in list_models() if m.settings}  # model -> its declared recipe


def dataset_spec(name: str) -> str | None:
    """The engine spec for a benchmark dataset name, or None when it is not on this machine."""
    if not name.startswith("cats"):
        return name
    if not SHARED_CATS.is_dir():
        return None
    _, _, count = name.partition(":")
    if not count:
        return str(SHARED_CATS)
    subset = Path(tempfile.gettempdir()) / f"bench-cats-{count}" / "cat"
    subset.mkdir(parents=True, exist_ok=True)
    for path in sorted(SHARED_CATS.rglob("*.jpg"))[:int(count)]:
        link = subset / path.name
        if not link.exists():
            link.symlink_to(path)
    return str(subset.parent)


def bench_config(model: str, spec: str, resolution: int, seconds: float, device: str, small: bool,
                 schedule_images: int):
    """The model's recipe on this dataset and budget: at its CPU size when ``small`` (the size the studio and
    the CLI apply on a CPU), else as published."""
    import torch

    from engine.presets import recipe

    config, _ = recipe(RECIPES[model], torch.device("cpu"), "cpu" if small else "source")
    config.data.spec, config.data.resolution = spec, resolution
    config.train.max_seconds, config.train.device = seconds, device
    config.train.grid_every = config.train.checkpoint_every = 10**9
    config.train.log_every = 50
    settings = get_model(model).settings
    if schedule_images and settings:
        for option in settings.schedule_options:
            config.model.options[option] = schedule_images
    return config


def run_one(job: dict) -> dict:
    """Train one model for the budget and score it (runs in its own process)."""
    import torch

    from engine import load_dataset, load_generator
    from engine.grid import image_grid, save_png
    from engine.metrics import evaluate
    from bench.flops import peak_flops, training_flops_per_image
    from engine.train import Trainer

    config = bench_config(job["model"], job["spec"], job["resolution"], job["seconds"], job["device"],
                          job["small"], job["schedule_images"])
    run_dir = Path(tempfile.mkdtemp(prefix=f"bench-zoo-{job['model']}-"))
    trainer = Trainer(config, run_dir)
    trainer.train()
    device = trainer.device
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    flops = training_flops_per_image(trainer)  # one more (unsaved) step, counted
    img_per_sec = trainer.images / max(trainer.train_seconds, 1e-9)
    peak_flops_device = peak_flops(device)
    gen = load_generator(run_dir, device)
    real = load_dataset(job["spec"], job["resolution"])
    names = ["swd"] + (["fid"] if os.environ.get("GAN_STUDIO_INCEPTION_WEIGHTS") else [])
    num = min(job["samples"], len(real.images))
    labels = max(1, gen.num_classes)
    results = evaluate(names, lambda n, first: gen.sample(seeds=range(first, first + n),
                                                          labels=[i % labels for i in range(first, first + n)]),
                       real.images, num, dataset_key=real.fingerprint, device=device)
    if job.get("grids"):
        grid = image_grid(gen.sample(seeds=range(36), labels=[i % labels for i in range(36)]), columns=6)
        save_png(grid, str(Path(job["grids"]) / f"{job['name'].replace(':', '-').replace('/', '-')}-{job['model']}.png"))
    params = sum(p.numel() for p in trainer.G.parameters()), sum(p.numel() for p in trainer.D.parameters())
    return {"model": job["model"], "recipe": RECIPES[job["model"]], "dataset": job["name"], "images": trainer.images,
            "seconds": trainer.train_seconds, "img_per_sec": img_per_sec, "gflop_per_image": flops / 1e9,
            "mfu": img_per_sec * flops / peak_flops_device if peak_flops_device else None, "peak_bytes": peak, "params_g": params[0], "params_d": params[1], **results,
            "errors": results.errors}


def table(rows: list[dict]) -> str:
    keys = sorted({k for r in rows for k in r if k.startswith(("swd_", "fid_"))})
    head = ["dataset", "model (preset)", "images", "img/s", "GFLOP/img", "MFU", "peak MiB", "G/D params (M)", *keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["dataset"], f"{r['model']} ({r['recipe']})", f"{r['images']:,}", f"{r['img_per_sec']:.0f}",
                 f"{r['gflop_per_image']:.2f}", f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a",
                 f"{r['peak_bytes'] / 2**20:.0f}", f"{r['params_g'] / 1e6:.2f} / {r['params_d'] / 1e6:.2f}",
                 *[f"{r[k]:.1f}" if k in r else "n/a" for k in keys]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="training budget per model")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", default=",".join(RECIPES))
    parser.add_argument("--datasets", default="builtin:faces,cats,cats:300")
    parser.add_argument("--size", choices=["auto", "small", "preset"], default="auto",
                        help="small: each recipe's CPU size (widths, batch); preset: as published "
                             "(auto: small on a CPU)")
    parser.add_argument("--schedule-images", type=int, default=0,
                        help="images per stage of models that grow (the progressive GAN's fade and stable "
                             "images; default: the recipe's, at its size)")
    parser.add_argument("--samples", type=int, default=1000, help="generated images per score")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--grids", type=Path, help="save 36 samples of each model here as PNG")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))))
        return

    from engine.device import detect_device, device_summary

    device = detect_device(args.device)
    small = args.size == "small" or (args.size == "auto" and device.type == "cpu")
    print(f"device: {device_summary(args.device)}; budget {args.seconds:.0f} s per model; {args.resolution} px; "
          f"{'recipes at their CPU size' if small else 'recipes as published'}; {time.strftime('%Y-%m-%d')}",
          flush=True)
    rows = []
    if args.grids:
        args.grids.mkdir(parents=True, exist_ok=True)
    for name in args.datasets.split(","):
        spec = dataset_spec(name)
        if spec is None:
            print(f"skipping {name}: {SHARED_CATS} is not on this machine", flush=True)
            continue
        for model in args.models.split(","):
            job = {"model": model, "name": name, "spec": spec, "resolution": args.resolution, "seconds": args.seconds,
                   "device": str(device), "small": small, "schedule_images": args.schedule_images,
                   "samples": args.samples, "grids": str(args.grids) if args.grids else ""}
            done = subprocess.run([sys.executable, __file__, "--one", json.dumps(job)], capture_output=True, text=True)
            if done.returncode:
                print(f"{name} {model}: failed\n{done.stderr[-2000:]}", flush=True)
                continue
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{name:>14} {model:>12}: {row['images']:>8,} images, {row['img_per_sec']:7.0f} img/s, "
                  + ", ".join(f"{k} {v:.1f}" for k, v in row.items() if k.startswith(("swd_", "fid_"))), flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
