"""ONNX export: every zoo model exports and matches onnxruntime at batch sizes other than the traced one, the
exported folder's README lines sample without PyTorch, the CLI, clear errors (a missing package, an exporter
that fails, a file that does not match), and the Download ONNX button of Explore and Runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

import engine
import engine.onnx_export as onnx_export
from engine.base.checkpoint import save_checkpoint
from engine.base.formats import GeneratorInfo
from engine.cli import main
from engine.generator import Generator
from engine.models import build_model, list_models
from engine.onnx_export import (INPUT_LABELS, INPUT_LATENTS, ONNX_FILE, OUTPUT_IMAGES, OUTPUT_RAW, README_FILE,
                                TOLERANCE, OnnxExportError, check_parity, to_onnx)
from studio.settings import DEMO_CHECKPOINT
from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
CLASSES = ["cat", "dog", "fox"]


def tiny(name: str) -> Generator:
    """The model at its tiny test options and smallest resolution (three classes when conditional)."""
    info = engine.get_model(name)
    assert info.settings is not None
    classes = CLASSES if info.conditional else []
    resolution = min(info.resolutions)
    pair = build_model(name, dict(info.settings.tiny), resolution, len(classes))
    torch.manual_seed(0)
    for parameter in pair.generator.parameters():  # away from the initialisation (zero biases, unit norms)
        parameter.data.add_(torch.randn_like(parameter) * 0.02)
    return Generator(pair.generator, GeneratorInfo(name, resolution, pair.latent_dim, dict(info.settings.tiny),
                                                   len(classes), classes))


def run_onnx(data: bytes, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    images, raw = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run([OUTPUT_IMAGES, OUTPUT_RAW], feed)
    return images, raw


@pytest.mark.parametrize("name", [m.name for m in list_models()])
def test_every_zoo_model_exports_and_matches_pytorch_at_other_batch_sizes(name: str) -> None:
    gen = tiny(name)
    exported = to_onnx(gen)
    assert exported.parity.max_abs_diff <= TOLERANCE and exported.parity.batches == (8, 1)
    model = onnx.load_from_string(exported.data)
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == [INPUT_LATENTS, INPUT_LABELS][:1 + bool(gen.num_classes)]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # a named, dynamic batch axis
    for batch in (3, 5):  # neither the traced batch (2) nor the engine's check (8, 1)
        z = torch.randn(batch, gen.latent_dim, generator=torch.Generator().manual_seed(batch))
        labels = [i % len(CLASSES) for i in range(batch)]
        feed = {INPUT_LATENTS: z.numpy()}
        if gen.num_classes:
            feed[INPUT_LABELS] = np.asarray(labels, np.int64)
        images, raw = run_onnx(exported.data, feed)
        with torch.no_grad():
            expected = gen.module(z, torch.tensor(labels)).float().numpy()
        assert raw.shape == expected.shape and np.abs(raw - expected).max() <= TOLERANCE
        assert images.dtype == np.uint8 and images.shape == (batch, gen.resolution, gen.resolution, 3)
        assert np.abs(images.astype(int) - gen.sample(latents=z, labels=labels).astype(int)).max() <= 1
    if gen.num_classes:  # the labels reach the network
        z = np.repeat(feed[INPUT_LATENTS][:1], 2, axis=0)
        first, second = run_onnx(exported.data, {INPUT_LATENTS: z, INPUT_LABELS: np.array([0, 1], np.int64)})[0]
        assert not np.array_equal(first, second)


def test_the_parity_check_refuses_a_file_that_does_not_match() -> None:
    gen = tiny("dcgan")
    exported = to_onnx(gen)
    with torch.no_grad():
        next(gen.module.parameters()).mul_(1.5)
    with pytest.raises(OnnxExportError, match=r"export of the dcgan generator does not match PyTorch: .*max \|Δ\|"):
        check_parity(gen, exported.data)


def test_cli_writes_a_folder_whose_readme_lines_sample_without_torch(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    gen = tiny("cdcgan")
    source = gen.save_pretrained(tmp_path / "safetensors")
    out = tmp_path / "onnx"
    assert main(["export", "--run", str(source), "--out", str(out), "--format", "onnx"]) == 0
    assert re.fullmatch(r"exported the generator as ONNX \(TorchScript exporter\) to .*; onnxruntime vs PyTorch on 9 "
                        r"samples \(batches of 8 and 1\): max \|Δ\| \S+ \(tolerance 0.0001\), 0 of 27,648 uint8 "
                        r"values differ\n", capsys.readouterr().err)
    assert sorted(p.name for p in out.iterdir()) == sorted(["config.json", ONNX_FILE, README_FILE])
    info = GeneratorInfo.read(out)
    assert info.class_names == CLASSES and info.extra["onnx"]["inputs"] == [INPUT_LATENTS, INPUT_LABELS]
    readme = (out / README_FILE).read_text()
    assert f"`z`: float32 N×{gen.latent_dim}," in readme and "(0 = cat, 1 = dog, 2 = fox)" in readme
    (code,) = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(code.splitlines()) == 3
    script = code + "import sys\nassert 'torch' not in sys.modules, 'the README lines imported torch'\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=out, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    samples = np.asarray(Image.open(out / "samples.png"))
    assert samples.shape == (32, 16 * 32, 3) and samples.std() > 0


def test_cli_safetensors_stays_the_default(tmp_path: Path) -> None:
    source = tiny("dcgan").save_pretrained(tmp_path / "source")
    assert main(["export", "--run", str(source), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["config.json", "model.safetensors"]


def test_a_missing_onnxruntime_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime raises ImportError
    with pytest.raises(OnnxExportError, match="needs the onnxruntime package, which is not installed: "
                                              "pip install onnxruntime"):
        to_onnx(tiny("dcgan"))
    source = tiny("dcgan").save_pretrained(tmp_path / "source")
    assert main(["export", "--run", str(source), "--out", str(tmp_path / "out"), "--format", "onnx"]) == 2
    assert capsys.readouterr().err == ("error: ONNX export needs the onnxruntime package, which is not installed: "
                                       "pip install onnxruntime (or pip install -r requirements.txt)\n")
    assert not (tmp_path / "out").exists()


def test_a_model_the_tracer_cannot_convert_names_the_model_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(*args: Any) -> bytes:
        raise RuntimeError("Unsupported: ONNX export of convolution for kernel of unknown shape.\nmore detail")

    monkeypatch.setattr(onnx_export, "_torchscript", fails)
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(OnnxExportError) as raised:
        to_onnx(tiny("sngan"))
    assert str(raised.value) == (
        "cannot export the sngan generator to ONNX: the TorchScript exporter failed with RuntimeError: Unsupported: "
        "ONNX export of convolution for kernel of unknown shape., and the torch.export exporter needs the "
        "onnxscript package: pip install onnxscript (or pip install -r requirements.txt)")


def test_a_network_the_tracer_cannot_convert_goes_through_torch_export(monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(*args: Any) -> bytes:
        raise RuntimeError("Unsupported: ONNX export of convolution for kernel of unknown shape.")

    monkeypatch.setattr(onnx_export, "_torchscript", fails)
    gen = tiny("lsgan")
    exported = to_onnx(gen)
    assert exported.exporter == "torch.export" and exported.parity.max_abs_diff <= TOLERANCE
    z = np.random.default_rng(0).standard_normal((3, gen.latent_dim), dtype=np.float32)
    assert run_onnx(exported.data, {INPUT_LATENTS: z})[0].shape == (3, 32, 32, 3)


def test_importing_the_export_module_loads_no_onnx_package() -> None:
    script = (f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nimport engine, engine.onnx_export\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'onnxruntime', 'onnxscript')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.fixture
def explore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(tmp_path / "runs"))
    app = AppTest.from_file(APP, default_timeout=180)
    app.switch_page("studio/pages/explore.py").run()
    assert not app.exception, app.exception
    return app


def test_explore_exports_the_demo_and_offers_a_valid_onnx_file(explore: AppTest,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    served: dict[str, bytes] = {}
    add = MediaFileManager.add

    def recorded(self: MediaFileManager, data: Any, *args: Any, **kwargs: Any) -> str:
        url = add(self, data, *args, **kwargs)
        served[url] = data
        return url

    monkeypatch.setattr(MediaFileManager, "add", recorded)
    assert not [b for b in explore.get("download_button") if "ONNX" in b.proto.label]
    explore.button(key=f"onnx-export:{DEMO_CHECKPOINT}").click().run()
    assert not explore.exception and not explore.error, [e.value for e in explore.error]
    assert not [b for b in explore.button if b.key == f"onnx-export:{DEMO_CHECKPOINT}"]  # the download replaced it
    (button,) = [b for b in explore.get("download_button") if "ONNX" in b.proto.label]
    assert re.fullmatch(r"Download ONNX \(4\.\d MB\)", button.proto.label)
    assert any(c.value.startswith("Checked: onnxruntime vs PyTorch on 9 samples") for c in explore.caption)
    (code,) = [c.value for c in explore.code if "onnxruntime" in c.value]
    assert 'InferenceSession("demo-faces64-generator.onnx")' in code  # the file's name as downloaded
    data = served[button.proto.url]
    onnx.checker.check_model(onnx.load_from_string(data))
    z = np.random.default_rng(0).standard_normal((2, 100), dtype=np.float32)
    images, _ = run_onnx(data, {INPUT_LATENTS: z})
    assert images.shape == (2, 64, 64, 3)
    explore.run()  # the export is kept for the session: no second export, the same file offered
    assert not [b for b in explore.button if b.key == f"onnx-export:{DEMO_CHECKPOINT}"]
    assert [b.proto.url for b in explore.get("download_button") if "ONNX" in b.proto.label] == [button.proto.url]


def test_explore_shows_a_failed_export_as_one_error(explore: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    explore.button(key=f"onnx-export:{DEMO_CHECKPOINT}").click().run()
    assert not explore.exception
    assert [e.value for e in explore.error] == [
        "Could not export this generator to ONNX: ONNX export needs the onnxruntime package, which is not "
        "installed: pip install onnxruntime (or pip install -r requirements.txt)"]
    assert not [b for b in explore.get("download_button") if "ONNX" in b.proto.label]


def test_runs_offers_a_runs_latest_generator_as_onnx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = engine.Run(tmp_path / "runs" / "tiny")
    run.path.mkdir(parents=True)
    run.write_config(tiny_config())
    run.write_status(state="finished", pid=None, step=10, images=160, progress=None)
    gen = tiny("dcgan")
    state = {"step": 10, "images": 160, "model": "dcgan", "model_options": gen.info.model_options, "resolution": 32,
             "latent_dim": gen.latent_dim, "num_classes": 0, "seed": 0,
             "dataset": {"spec": "builtin:faces:256", "classes": [], "count": 256}}
    save_checkpoint(run.path / "checkpoints" / "ckpt_00000010.json", {"G_ema": gen.module}, {}, {}, state)
    monkeypatch.setenv("GAN_STUDIO_RUNS", str(run.path.parent))
    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page("studio/pages/runs.py").run()
    at.session_state["runs-table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    at.button(key=f"onnx-export:{run.path}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (button,) = [b for b in at.get("download_button") if "ONNX" in b.proto.label]
    assert button.proto.label == "Download ONNX (0.2 MB)"
    (code,) = [c.value for c in at.code if "onnxruntime" in c.value]
    assert 'InferenceSession("tiny-generator.onnx")' in code and f"randn(16, {gen.latent_dim})" in code
