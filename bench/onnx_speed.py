"""CPU sampling speed of a generator exported to ONNX (onnxruntime) against PyTorch eager, and the export's parity.

Two generators: the shipped demo (checkpoints/demo-faces64, DCGAN 64 px) and a DCGAN at a recipe's published
size (``--recipe``, default afhq-dcgan-128: 128 px, ngf 64; random weights, which do not change the speed).
Each is exported with ``engine.to_onnx`` (which checks it against PyTorch) and timed at each batch size, both
ways producing uint8 images: PyTorch eager as ``Generator.sample`` runs it (OpenMP threads passive, as under
``python -m engine``), onnxruntime with its defaults, as the exported README's lines run it. The two backends
take turns for ``--rounds`` rounds of at least ``--seconds`` each and the median is reported, so a CPU shared
with other work slows both alike. ``--zoo`` adds every zoo model's parity at its tiny test options.

    python bench/onnx_speed.py [--recipe afhq-dcgan-128] [--batches 1,64] [--seconds 3] [--rounds 3] [--threads N]
                               [--zoo]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as python -m engine samples (engine/__main__.py)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from engine.base.formats import GeneratorInfo  # noqa: E402
from engine.device import detect_device  # noqa: E402
from engine.generator import Generator, load_generator  # noqa: E402
from engine.models import build_model, list_models  # noqa: E402
from engine.onnx_export import INPUT_LATENTS, OUTPUT_IMAGES, OnnxGenerator, to_onnx  # noqa: E402
from engine.presets import recipe  # noqa: E402

DEMO = ROOT / "checkpoints" / "demo-faces64"


def recipe_generator(name: str) -> Generator:
    """The DCGAN of recipe ``name`` at its published size, freshly initialised."""
    config, _ = recipe(name, detect_device("cpu"), "source")
    res, options = config.data.resolution, dict(config.model.options)
    pair = build_model(config.model.name, options, res, 0)
    return Generator(pair.generator, GeneratorInfo(config.model.name, res, pair.latent_dim, options))


def rate(call: Callable[[], object], batch: int, seconds: float) -> float:
    """Samples per second of ``call`` (one batch each), over at least ``seconds`` and 3 calls."""
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < seconds:
        call()
        calls += 1
    return calls * batch / (time.perf_counter() - start)


def speeds(gen: Generator, exported: OnnxGenerator, batch: int, seconds: float, rounds: int,
           threads: int) -> tuple[float, float]:
    """Median samples/s of PyTorch eager and of onnxruntime, taking turns (``threads`` each, 0: their defaults)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(exported.data, options, providers=["CPUExecutionProvider"])
    z = gen.latents(range(batch))
    feed = {INPUT_LATENTS: z.numpy()}

    def pytorch() -> np.ndarray:
        return gen.sample(latents=z, batch_size=batch)

    def onnxruntime() -> np.ndarray:
        return session.run([OUTPUT_IMAGES], feed)[0]

    for call in (pytorch, onnxruntime):  # warm-up
        call()
    measured: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for times, call in zip(measured, (pytorch, onnxruntime)):
            times.append(rate(call, batch, seconds))
    return statistics.median(measured[0]), statistics.median(measured[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="afhq-dcgan-128")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0,
                        help="threads for both (0: each library's default, the number of cores)")
    parser.add_argument("--zoo", action="store_true", help="also every zoo model's parity at its tiny options")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)
    ort_threads = args.threads or "default"
    print(f"CPU, {os.cpu_count()} cores ({platform.machine()}), torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), onnxruntime {ort.__version__} ({ort_threads} threads), "
          f"{time.strftime('%Y-%m-%d')}, load average {os.getloadavg()[0]:.1f}\n")
    targets = {"demo-faces64 (DCGAN 64 px, ngf 32)": load_generator(DEMO),
               f"{args.recipe} (published size)": recipe_generator(args.recipe)}
    rows = []
    print("| generator | exporter | ONNX file | parity (max abs diff, −1…1) | uint8 values differing |")
    print("| --- | --- | --- | --- | --- |")
    for label, gen in targets.items():
        start = time.perf_counter()
        exported = to_onnx(gen)
        seconds = time.perf_counter() - start
        p = exported.parity
        print(f"| {label} | {exported.exporter}, {seconds:.1f} s with the check | {len(exported.data) / 2**20:.1f} MB "
              f"| {p.max_abs_diff:.1e} | {p.differing_values} of {p.values:,} |", flush=True)
        for batch in batches:
            rows.append((label, batch, *speeds(gen, exported, batch, args.seconds, args.rounds, args.threads)))
    print(f"\nload average after timing: {os.getloadavg()[0]:.1f}")
    print("\n| generator | batch | PyTorch eager (samples/s) | onnxruntime (samples/s) | ONNX / PyTorch |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, batch, torch_rate, onnx_rate in rows:
        print(f"| {label} | {batch} | {torch_rate:,.1f} | {onnx_rate:,.1f} | {onnx_rate / torch_rate:.2f}× |")
    if args.zoo:
        print("\n| zoo model (tiny options) | exporter | parity (max abs diff) | uint8 values differing |")
        print("| --- | --- | --- | --- |")
        for model in list_models():
            assert model.settings is not None
            classes = 3 if model.conditional else 0
            res = min(model.resolutions)
            pair = build_model(model.name, dict(model.settings.tiny), res, classes)
            info = GeneratorInfo(model.name, res, pair.latent_dim, dict(model.settings.tiny), classes)
            exported = to_onnx(Generator(pair.generator, info))
            p = exported.parity
            print(f"| {model.name} | {exported.exporter} | {p.max_abs_diff:.1e} | {p.differing_values} of "
                  f"{p.values:,} |", flush=True)


if __name__ == "__main__":
    main()
