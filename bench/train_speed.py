"""Training throughput: this engine vs a plain PyTorch-example-style loop, same DCGAN and batch.

The example decodes JPEGs with an ImageFolder + DataLoader (worker processes) every step, as the
PyTorch DCGAN example does; the engine trains from its uint8 dataset resident on the device.

    python bench/train_speed.py [--seconds 30] [--device auto] [--ngf 64] [--batch-size 64] [--source-size 64]
                                [--rounds 1] [--compile default,reduce-overhead] [--zoo [--zoo-seconds 10] [--zoo-batch-size N]]

With --zoo it then measures every model of the zoo the same way (img/s, training FLOPs per image,
MFU against the GPU's bf16 peak, peak memory), so one command prints all of the speed numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.config import Config, DataConfig, ModelConfig, TrainConfig  # noqa: E402
from engine.data.faces import render_faces  # noqa: E402
from engine.device import detect_device, device_summary  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.train import Trainer  # noqa: E402
from bench.flops import peak_flops, training_flops_per_image  # noqa: E402

SHARED_CATS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "afhq_cat64"


def image_folder(count: int, source_size: int) -> Path:
    """A folder of JPEGs: at 64 px the shared AFHQ cats when present, else built-in faces drawn at
    ``source_size`` and written out (users' folders are rarely stored at the training size)."""
    if SHARED_CATS.is_dir() and source_size == 64:
        return SHARED_CATS
    root = Path(tempfile.mkdtemp(prefix="bench-faces-")) / "faces"
    root.mkdir()
    images, _ = render_faces(count, source_size)
    for i, image in enumerate(images):
        Image.fromarray(image).save(root / f"{i:05d}.jpg", quality=95)
    return root.parent


def example_loop(folder: Path, device: torch.device, ngf: int, batch: int, seconds: float, workers: int) -> float:
    """The PyTorch DCGAN example's loop: ImageFolder + DataLoader, fp32, D real/fake then G."""
    import torchvision.datasets as dset
    import torchvision.transforms as T

    transform = T.Compose([T.Resize(64), T.CenterCrop(64), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    root = folder if any(p.is_dir() for p in folder.iterdir()) else folder.parent
    data = dset.ImageFolder(str(root), transform=transform)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                                         persistent_workers=workers > 0)
    pair = build_model("dcgan", {"ngf": ngf, "ndf": ngf}, 64)
    net_g, net_d = pair.generator.to(device), pair.discriminator.to(device)
    criterion = torch.nn.BCEWithLogitsLoss()
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    images, start, warm = 0, 0.0, 3
    while True:
        for real, _ in loader:
            real = real.to(device)
            net_d.zero_grad()
            out = net_d(real)
            err_real = criterion(out, torch.ones_like(out))
            err_real.backward()
            fake = net_g(torch.randn(batch, 100, device=device))
            out = net_d(fake.detach())
            err_fake = criterion(out, torch.zeros_like(out))
            err_fake.backward()
            opt_d.step()
            net_g.zero_grad()
            out = net_d(fake)
            err_g = criterion(out, torch.ones_like(out))
            err_g.backward()
            opt_g.step()
            _ = (err_real + err_fake).item(), err_g.item()
            if warm:
                warm -= 1
                if not warm:
                    start = time.perf_counter()
                continue
            images += batch
            if time.perf_counter() - start >= seconds:
                return images / (time.perf_counter() - start)


def measure(trainer: Trainer, seconds: float, flops: float | None = None) -> tuple[float, float, int | None]:
    """img/s of ``trainer`` over ``seconds`` after 3 warm-up steps (compilation, autotuning), its
    training FLOPs per image (counted unless given) and peak CUDA memory (None on a CPU)."""
    device, batch = trainer.device, trainer.config.train.batch_size
    for _ in range(3):
        trainer.train_step()
    if flops is None:
        flops = training_flops_per_image(trainer)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    chunk = 10 if device.type == "cuda" else 1  # steps between clock reads (a read syncs the GPU)
    images, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(chunk):
            trainer.train_step()
            images += batch
        if device.type == "cuda":
            torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return images / (time.perf_counter() - start), flops, peak


def engine_loop(folder: Path, device: torch.device, ngf: int, batch: int, seconds: float, compile: str = "off",
                flops: float | None = None) -> tuple[Trainer, tuple[float, float, int | None]]:
    """This engine's Trainer on the same folder (decoded once into its uint8 cache), with its defaults
    (bf16 and channels_last on CUDA; on a CPU the memory format it timed as faster) and train.compile
    set to ``compile``, and its numbers."""
    config = Config(data=DataConfig(str(folder), 64, flip=False), model=ModelConfig("dcgan", {"ngf": ngf, "ndf": ngf}),
                    train=TrainConfig(batch_size=batch, device=str(device), compile=compile))
    trainer = Trainer(config, Path(tempfile.mkdtemp(prefix="bench-run-")))
    return trainer, measure(trainer, seconds, flops)


def setup(trainer: Trainer) -> str:
    """The precision and memory format ``trainer`` chose, e.g. 'bf16, channels_last'."""
    return f"{'bf16' if trainer.bf16 else 'fp32'}, {'channels_last' if trainer.channels_last else 'contiguous'}"


def row(name: str, img_per_sec: float, flops: float, peak: float | None, peak_bytes: int | None) -> str:
    achieved = img_per_sec * flops
    mfu = f"{achieved / peak:.1%}" if peak else "n/a"
    memory = f"{peak_bytes / 2**20:.0f}" if peak_bytes is not None else "n/a"
    return f"{name:<72} {img_per_sec:>10.1f} {flops / 1e9:>9.2f} {achieved / 1e12:>9.2f} {mfu:>7} {memory:>9}"


def zoo_rows(device: torch.device, seconds: float, batch: int | None) -> list[str]:
    """Throughput of every zoo model from its benchmark recipe (CPU widths on a CPU) on built-in faces,
    the progressive GAN at its final stage."""
    from bench.zoo import RECIPES, bench_config

    rows = []
    for model in RECIPES:
        config = bench_config(model, "builtin:faces:2000", 64, 0, str(device), device.type == "cpu", 1)
        if batch:
            config.train.batch_size = batch
        trainer = Trainer(config, Path(tempfile.mkdtemp(prefix=f"bench-speed-{model}-")))
        img_per_sec, flops, peak_bytes = measure(trainer, seconds)
        label = f"{model} ({RECIPES[model]}, batch {config.train.batch_size}, {setup(trainer)})"
        rows.append(row(label, img_per_sec, flops, peak_flops(device), peak_bytes))
        del trainer
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--source-size", type=int, default=64, choices=[64, 128, 256],
                        help="size of the JPEGs on disk (64: the AFHQ cats when present)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate example and engine this many times and report the medians (noisy machines)")
    parser.add_argument("--compile", default="", help="also measure the engine with these train.compile modes "
                        "(comma-separated: default, reduce-overhead (CUDA graphs), max-autotune)")
    parser.add_argument("--zoo", action="store_true", help="also measure every zoo model (img/s, FLOPs, MFU, memory)")
    parser.add_argument("--zoo-seconds", type=float, default=10.0)
    parser.add_argument("--zoo-batch-size", type=int, help="batch for the zoo models (default: their recipes')")
    args = parser.parse_args()
    device = detect_device(args.device)
    folder = image_folder(2000, args.source_size)
    print(f"device: {device_summary(args.device)}; torch {torch.__version__}; threads {torch.get_num_threads()}")
    print(f"data: {folder} ({args.source_size} px JPEGs); DCGAN-64 ngf=ndf={args.ngf}, batch {args.batch_size}, "
          f"{args.seconds:.0f} s each")
    examples = [example_loop(folder, device, args.ngf, args.batch_size, args.seconds, args.workers)]
    trainer, (ours, flops, peak_bytes) = engine_loop(folder, device, args.ngf, args.batch_size, args.seconds)
    engines = [ours]
    for _ in range(args.rounds - 1):
        examples.append(example_loop(folder, device, args.ngf, args.batch_size, args.seconds, args.workers))
        engines.append(measure(trainer, args.seconds, flops)[0])
    example, ours = statistics.median(examples), statistics.median(engines)
    engine_label = f"GAN Studio engine ({setup(trainer)})"
    peak = peak_flops(device)
    print(f"{'loop':<72} {'img/s':>10} {'GFLOP/img':>9} {'TFLOP/s':>9} {'MFU':>7} {'peak MiB':>9}")
    print(row("PyTorch example (ImageFolder+DataLoader, fp32)", example, flops, peak, None))
    print(row(engine_label, ours, flops, peak, peak_bytes))
    print(f"ratio engine/example: {ours / example:.2f}x")
    if args.rounds > 1:
        print(f"medians of {args.rounds} alternating rounds; per round, example / engine img/s (ratio): "
              + ", ".join(f"{e:.1f} / {o:.1f} ({o / e:.2f}x)" for e, o in zip(examples, engines)))
    for mode in filter(None, args.compile.split(",")):
        start = time.perf_counter()
        compiled, (speed, _, compiled_peak) = engine_loop(folder, device, args.ngf, args.batch_size, args.seconds,
                                                          mode, flops)
        ready = time.perf_counter() - start - args.seconds
        print(row(f"GAN Studio engine, compile={mode} ({setup(compiled)}; {ready:.0f} s to build and compile)",
                  speed, flops, peak, compiled_peak))
    if args.zoo:
        print(f"\nevery zoo model, GAN Studio engine, {args.zoo_seconds:.0f} s each:")
        print("\n".join(zoo_rows(device, args.zoo_seconds, args.zoo_batch_size)))


if __name__ == "__main__":
    main()
