"""A generator as a portable ONNX file: latents (and class labels) in, uint8 RGB images out, any batch size.

Every export is checked: onnxruntime runs the file on fixed latents at two batch sizes and its images must match
PyTorch's within ``TOLERANCE``. onnx, onnxruntime and onnxscript are imported when an export runs, so importing
the engine stays light.

The graph is traced with PyTorch's TorchScript exporter (under a second per model on a CPU; a growing
generator is frozen at its current stage and fade-in), and with the torch.export-based exporter (onnxscript,
a few seconds) when a network uses something the tracer cannot convert.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import os
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from engine import __version__
from engine.base.files import atomic_write_bytes, atomic_write_json
from engine.base.formats import CONFIG_FILE, GeneratorInfo
from engine.generator import Generator, load_generator
from engine.grid import to_uint8

ONNX_FILE = "generator.onnx"
README_FILE = "README.md"
OPSET = 20
TOLERANCE = 1e-4  # max |ONNX − PyTorch| of the float images (−1 … 1; one uint8 level is 2/255 ≈ 0.0078)
CHECK_BATCHES = (8, 1)  # the parity check's batch sizes: two, so the batch axis is shown to be dynamic
METADATA_KEY = "gan_studio"  # the ONNX file's metadata_props key holding the generator's config.json
INPUT_LATENTS, INPUT_LABELS = "z", "labels"
OUTPUT_IMAGES, OUTPUT_RAW = "images", "raw"
EXPORTERS = ("TorchScript", "torch.export")
_STDOUT_LOCK = threading.Lock()


class OnnxExportError(ValueError):
    """The generator cannot be written as ONNX, or its ONNX file does not match PyTorch (the message says
    which model, why, and what to do)."""


@dataclass(frozen=True)
class Parity:
    """onnxruntime against PyTorch on the same latents (and labels)."""

    samples: int
    batches: tuple[int, ...]
    max_abs_diff: float  # the float images, −1 … 1
    differing_values: int  # uint8 values that differ (a float that falls on the other side of a rounding step)
    values: int  # uint8 values compared

    def __str__(self) -> str:
        batches = " and ".join(map(str, self.batches))
        return (f"onnxruntime vs PyTorch on {self.samples} samples (batches of {batches}): "
                f"max |Δ| {self.max_abs_diff:.2g} (tolerance {TOLERANCE:g}), "
                f"{self.differing_values:,} of {self.values:,} uint8 values differ")

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "batches": list(self.batches), "max_abs_diff": self.max_abs_diff,
                "differing_uint8_values": self.differing_values, "uint8_values": self.values,
                "tolerance": TOLERANCE}


@dataclass(frozen=True)
class OnnxGenerator:
    """A checked ONNX file of a generator."""

    data: bytes  # the .onnx file
    info: GeneratorInfo
    parity: Parity
    exporter: str  # one of EXPORTERS


class _Sampling(nn.Module):
    """What the ONNX graph computes: the generator, then the engine's uint8 conversion (engine.grid.to_uint8)."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.generator(z, labels).float()
        images = raw.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8).permute(0, 2, 3, 1)
        return images, raw


def _need(package: str) -> ModuleType:
    """Import an optional package, or say which one is missing and how to install it."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise OnnxExportError(f"ONNX export needs the {package} package, which is not installed: "
                              f"pip install {package} (or pip install -r requirements.txt)") from None


def _inputs(gen: Generator, batch: int) -> tuple[torch.Tensor, ...]:
    """Fixed latents (seeds 0 … batch−1) and, for a conditional generator, labels cycling through the classes."""
    z = gen.latents(range(batch))
    if not gen.num_classes:
        return (z,)
    return z, torch.arange(batch, dtype=torch.long) % gen.num_classes


def _input_names(info: GeneratorInfo) -> list[str]:
    return [INPUT_LATENTS, INPUT_LABELS] if info.num_classes else [INPUT_LATENTS]


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"


@contextlib.contextmanager
def _stdout_discarded() -> Iterator[None]:
    """Discard what is written to file descriptor 1 meanwhile, one export at a time (the studio serves several
    sessions from threads): the TorchScript exporter prints the whole graph there from C++ when it fails, the
    torch.export one its progress; a failure is reported in words instead."""
    with _STDOUT_LOCK:
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)


def _torchscript(module: nn.Module, args: tuple[torch.Tensor, ...], inputs: list[str]) -> bytes:
    axes = {name: {0: "batch"} for name in (*inputs, OUTPUT_IMAGES, OUTPUT_RAW)}
    with tempfile.TemporaryDirectory() as tmp, _stdout_discarded():
        path = Path(tmp) / ONNX_FILE
        torch.onnx.export(module, args, path, dynamo=False, input_names=inputs,
                          output_names=[OUTPUT_IMAGES, OUTPUT_RAW], dynamic_axes=axes, opset_version=OPSET)
        return path.read_bytes()


def _torch_export(module: nn.Module, args: tuple[torch.Tensor, ...], inputs: list[str]) -> bytes:
    batch = torch.export.Dim("batch", min=1)
    with _stdout_discarded():
        program = torch.onnx.export(module, args, dynamo=True, input_names=inputs,
                                    output_names=[OUTPUT_IMAGES, OUTPUT_RAW],
                                    dynamic_shapes=tuple({0: batch} for _ in args), opset_version=OPSET,
                                    verbose=False)
    if program is None:
        raise RuntimeError("the exporter returned no program")
    return bytes(program.model_proto.SerializeToString())


def _trace(gen: Generator) -> tuple[bytes, str]:
    """The ONNX graph of the generator's sampling function and the exporter that wrote it."""
    module = _Sampling(gen.module).eval()
    args = _inputs(gen, 2)  # not 1: the torch.export exporter would fix a batch axis of size 1
    inputs = _input_names(gen.info)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        try:
            return _torchscript(module, args, inputs), EXPORTERS[0]
        except Exception as exc:  # noqa: BLE001 - any failure: try the other exporter
            failed = f"the {EXPORTERS[0]} exporter failed with {_first_line(exc)}"
        try:
            _need("onnxscript")
        except OnnxExportError:
            raise OnnxExportError(f"cannot export the {gen.model_name} generator to ONNX: {failed}, and the "
                                  f"{EXPORTERS[1]} exporter needs the onnxscript package: pip install onnxscript "
                                  "(or pip install -r requirements.txt)") from None
        try:
            return _torch_export(module, args, inputs), EXPORTERS[1]
        except Exception as exc:  # noqa: BLE001 - both failed: say why, in words
            raise OnnxExportError(f"cannot export the {gen.model_name} generator to ONNX: {failed}, and the "
                                  f"{EXPORTERS[1]} exporter with {_first_line(exc)}") from None


def usage(info: GeneratorInfo, file: str = ONNX_FILE, count: int = 16) -> str:
    """Three lines of Python that sample ``count`` images from the ONNX file ``file`` with onnxruntime, numpy and
    Pillow (no PyTorch) and save them side by side as samples.png."""
    feed = f'"{INPUT_LATENTS}": np.random.randn({count}, {info.latent_dim}).astype(np.float32)'
    if info.num_classes:
        feed += f', "{INPUT_LABELS}": np.arange({count}, dtype=np.int64) % {info.num_classes}'
    return ("import numpy as np, onnxruntime as ort; from PIL import Image\n"
            f"feed = {{{feed}}}\n"
            f'Image.fromarray(np.hstack(ort.InferenceSession("{file}").run(["{OUTPUT_IMAGES}"], feed)[0]))'
            '.save("samples.png")\n')


def _describe(info: GeneratorInfo) -> str:
    """The inputs and outputs of the exported graph, as Markdown bullets."""
    size = info.resolution
    lines = [f"- `{INPUT_LATENTS}`: float32 N×{info.latent_dim}, standard normal latents (multiply them by a "
             "truncation below 1 for cleaner, less varied images). N is any batch size."]
    if info.num_classes:
        names = (", ".join(f"{i} = {name}" for i, name in enumerate(info.class_names))
                 or f"0 … {info.num_classes - 1}")
        lines.append(f"- `{INPUT_LABELS}`: int64 N, the class of each image ({names}).")
    lines += [f"- `{OUTPUT_IMAGES}`: uint8 N×{size}×{size}×3, RGB images (0 … 255), ready for PIL or numpy.",
              f"- `{OUTPUT_RAW}`: float32 N×3×{size}×{size}, the network's output before quantisation: −1 … 1 maps "
              "to 0 … 255."]
    return "\n".join(lines)


def readme(exported: OnnxGenerator) -> str:
    """The exported folder's README.md: what the file is, the three lines that sample from it, its inputs and
    outputs, and how it was checked."""
    info = exported.info
    trained = f", trained on {info.images:,} images ({info.step:,} steps)" if info.images and info.step else ""
    data = f" of `{info.dataset}`" if info.dataset else ""
    return (f"# {info.model} generator, {info.resolution}×{info.resolution} (ONNX)\n\n"
            f"`{ONNX_FILE}` is the EMA generator of a GAN Studio {info.model} model{data}{trained}, exported by "
            f"GAN Studio {__version__} with PyTorch's {exported.exporter} exporter (opset {OPSET}). "
            f"`{CONFIG_FILE}` describes the network (the same JSON is in the file's metadata under "
            f"`{METADATA_KEY}`).\n\n"
            "Sample 16 images without PyTorch (`pip install onnxruntime numpy pillow`), run next to the file:\n\n"
            f"```python\n{usage(info)}```\n\n"
            f"## Inputs and outputs\n\n{_describe(info)}\n\n"
            "Latents drawn with numpy are not the studio's seeds (GAN Studio draws seed latents with PyTorch's "
            "generator), but any standard normal latents give samples of the model.\n\n"
            f"## Checked at export\n\n{exported.parity}.\n")


def check_parity(gen: Generator, data: bytes) -> Parity:
    """Run the ONNX file with onnxruntime on fixed latents at each of CHECK_BATCHES and compare with PyTorch;
    OnnxExportError when the float images differ by more than TOLERANCE or onnxruntime cannot run it."""
    ort = _need("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise OnnxExportError(f"onnxruntime cannot load the ONNX export of the {gen.model_name} generator: "
                              f"{_first_line(exc)}") from None
    worst, differing, values = 0.0, 0, 0
    for batch in CHECK_BATCHES:
        args = _inputs(gen, batch)
        with torch.no_grad():
            raw = gen.module(*args).float()
        feed = {name: tensor.numpy() for name, tensor in zip(_input_names(gen.info), args)}
        try:
            images, onnx_raw = session.run([OUTPUT_IMAGES, OUTPUT_RAW], feed)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise OnnxExportError(f"onnxruntime cannot run the ONNX export of the {gen.model_name} generator on "
                                  f"a batch of {batch}: {_first_line(exc)}") from None
        expected = to_uint8(raw)
        if images.shape != expected.shape or onnx_raw.shape != tuple(raw.shape):
            raise OnnxExportError(f"the ONNX export of the {gen.model_name} generator gives images of shape "
                                  f"{images.shape} for a batch of {batch}, PyTorch {expected.shape}")
        worst = max(worst, float(np.abs(onnx_raw - raw.numpy()).max()))
        differing += int(np.count_nonzero(images != expected))
        values += expected.size
    parity = Parity(sum(CHECK_BATCHES), CHECK_BATCHES, worst, differing, values)
    if not worst <= TOLERANCE:
        raise OnnxExportError(f"the ONNX export of the {gen.model_name} generator does not match PyTorch: {parity}")
    return parity


def to_onnx(gen: Generator) -> OnnxGenerator:
    """The generator (on the CPU, eval mode) as a checked ONNX file, its config.json in the file's metadata."""
    onnx = _need("onnx")
    _need("onnxruntime")  # before the export, which is the slow part
    if gen.device.type != "cpu":  # a copy: the caller keeps its generator where it is
        gen = Generator(copy.deepcopy(gen.module), gen.info, "cpu")
    data, exporter = _trace(gen)
    info = replace(gen.info, engine_version=__version__)
    model = onnx.load_from_string(data)
    model.doc_string = f"GAN Studio {info.model} generator. Sample from it:\n{usage(info)}"
    del model.metadata_props[:]
    model.metadata_props.add(key=METADATA_KEY, value=json.dumps(info.to_dict(), sort_keys=True))
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    return OnnxGenerator(data, info, check_parity(gen, data), exporter)


def export_onnx(source: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> OnnxGenerator:
    """Write the EMA generator of a run, checkpoint or exported folder as ``generator.onnx`` (checked against
    PyTorch), ``README.md`` (how to sample from it without PyTorch) and ``config.json`` into ``out_dir``."""
    exported = to_onnx(load_generator(source))
    out = Path(out_dir)
    info = replace(exported.info, extra={**exported.info.extra, "onnx": {
        "file": ONNX_FILE, "opset": OPSET, "exporter": exported.exporter, "inputs": _input_names(exported.info),
        "outputs": [OUTPUT_IMAGES, OUTPUT_RAW], "parity": exported.parity.to_dict()}})
    atomic_write_bytes(out / ONNX_FILE, exported.data)
    atomic_write_json(out / CONFIG_FILE, info.to_dict())
    atomic_write_bytes(out / README_FILE, readme(exported).encode())
    return exported
