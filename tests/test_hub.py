"""Push, pull, model card, pickle refusal, token safety and offline behaviour against the local Hub server."""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

import engine
from engine.cli import main
from engine.hub import HubError, PickleRefused, materialise_run, pull_model, push_run
from engine.train import Trainer
from tests.hub_server import TOKEN, HubServer

pytest_plugins = ["tests.hub_helpers"]  # fixtures: hub, go_offline, tiny_run

REPO = "tester/faces"


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---", 2)[1])


def test_push_then_pull_gives_byte_identical_weights(hub: HubServer, tiny_run: Path) -> None:
    result = push_run(tiny_run, REPO, private=True)
    assert result.url == f"{hub.url}/{REPO}" and len(result.commit) == 40
    pushed = hub.files("model", REPO)
    assert {"model.safetensors", "config.json", "README.md", "assets/samples.png", "assets/interpolation.gif",
            "assets/loss.png"} <= set(pushed)
    assert not any(name.startswith("training/") for name in pushed)
    (create,) = hub.find("POST", "/api/repos/create")
    assert create.json()["name"] == "faces" and create.json()["visibility"] == "private"

    pulled = pull_model(REPO)
    assert (pulled.path / "model.safetensors").read_bytes() == pushed["model.safetensors"]
    assert json.loads((pulled.path / "config.json").read_bytes()) == json.loads(pushed["config.json"])
    assert pulled.revision == hub.repos[("model", REPO)].branches["main"]
    assert not list(pulled.path.glob("assets/*"))  # only safetensors, JSON and the card come down

    local = engine.load_generator(tiny_run)
    weights = load_file(str(pulled.path / "model.safetensors"))
    assert all(np.array_equal(weights[k].numpy(), v.numpy()) for k, v in local.module.state_dict().items())
    remote = engine.Generator.from_pretrained(REPO)
    assert np.array_equal(remote.sample(seeds=range(4)), local.sample(seeds=range(4)))
    assert remote.info["step"] == local.info["step"] and remote.dataset == "builtin:faces:64"


def test_model_card_has_metadata_pictures_metrics_and_usage(hub: HubServer, tiny_run: Path) -> None:
    push_run(tiny_run, REPO)
    files = hub.files("model", REPO)
    card = files["README.md"].decode()
    meta = front_matter(card)
    assert meta["library_name"] == "gan-studio" and meta["pipeline_tag"] == "unconditional-image-generation"
    assert {"gan", "unconditional-image-generation", "dcgan"} <= set(meta["tags"])
    metrics = meta["model-index"][0]["results"]
    fid = next(r for r in metrics if r["metrics"][0]["type"] == "fid")
    assert fid["metrics"][0] == {"type": "fid", "value": 123.456, "name": "FID-2k"}
    assert fid["dataset"] == {"name": "builtin:faces:64", "type": "custom"}
    assert [m["name"] for r in metrics for m in r["metrics"]] == ["FID-2k", "SWD-2k"]
    for asset in ("assets/samples.png", "assets/interpolation.gif", "assets/loss.png"):
        assert f"]({asset})" in card
    assert "| FID-2k | 123.5 | 6 |" in card and "| SWD-2k | 7.5 | 6 |" in card and "2,000 generated" in card
    assert f'Generator.from_pretrained("{REPO}")' in card and f"python -m engine pull {REPO}" in card
    assert "Resume training" not in card
    assert Image.open(io.BytesIO(files["assets/samples.png"])).size[0] >= 8 * 128
    gif = Image.open(io.BytesIO(files["assets/interpolation.gif"]))
    assert gif.n_frames > 10 and gif.info["loop"] == 0
    loss = np.asarray(Image.open(io.BytesIO(files["assets/loss.png"])).convert("RGB"))
    assert (np.abs(loss.astype(int) - [31, 119, 180]).sum(axis=2) < 30).sum() > 50  # the G curve is drawn


def test_training_state_round_trip_resumes_elsewhere(hub: HubServer, tiny_run: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture) -> None:
    push_run(tiny_run, REPO, with_training_state=True)
    latest = engine.Run(tiny_run).latest_checkpoint()
    files = hub.files("model", REPO)
    assert files[f"training/checkpoints/{latest.name}"] == latest.read_bytes()
    assert files[f"training/checkpoints/{latest.stem}.safetensors"] == latest.with_suffix(".safetensors").read_bytes()
    assert "training/config.json" in files and "training/metrics.jsonl" in files
    assert "Resume training" in files["README.md"].decode()

    resumed = tmp_path / "resumed"
    assert main(["pull", REPO, "--run-dir", str(resumed)]) == 0
    assert capsys.readouterr().out.strip().endswith(hub.repos[("model", REPO)].branches["main"])
    assert engine.Run(resumed).status()["state"] == "stopped"
    assert main(["train", "--resume", "--run-dir", str(resumed), "--max-steps", "8", "--device", "cpu",
                 "--no-progress"]) == 0
    assert json.loads((resumed / "status.json").read_text())["step"] == 8
    with pytest.raises(HubError, match="already exists"):
        materialise_run(pull_model(REPO, with_training_state=True), resumed)

    push_run(tiny_run, REPO)  # pushing again without the state removes the stale one
    assert not any(name.startswith("training/") for name in hub.files("model", REPO))
    with pytest.raises(HubError, match="without its training state"):
        pull_model(REPO, with_training_state=True)


def test_pickles_wrong_kinds_and_missing_repos_are_refused_clearly(hub: HubServer, tiny_run: Path) -> None:
    hub.add_repo("model", "someone/pickled", {"pytorch_model.bin": b"\x80\x04pickle", "config.json": b"{}"})
    with pytest.raises(PickleRefused, match=r"pickle files \(pytorch_model\.bin\).*arbitrary code"):
        pull_model("someone/pickled")
    assert not hub.find("GET", "pytorch_model.bin")

    push_run(tiny_run, REPO)
    ours = hub.files("model", REPO)
    hub.add_repo("model", "someone/mixed", {**ours, "optimizer.pt": b"\x80\x04pickle", "extra.ckpt": b"x"})
    pulled = pull_model("someone/mixed")
    assert sorted(p.name for p in pulled.path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert not [r for r in hub.requests if r.path.endswith((".pt", ".ckpt"))]

    hub.add_repo("model", "someone/other", {"config.json": b'{"format": "diffusers"}',
                                             "model.safetensors": ours["model.safetensors"]})
    with pytest.raises(HubError, match="not a GAN Studio generator: its config.json has format 'diffusers'"):
        pull_model("someone/other")
    hub.add_repo("model", "someone/empty", {"README.md": b"# nothing"})
    with pytest.raises(HubError, match="has no config.json and no model.safetensors"):
        pull_model("someone/empty")
    with pytest.raises(HubError, match="there is no model repo someone/absent"):
        pull_model("someone/absent")
    with pytest.raises(HubError, match="not a model repo id"):
        pull_model("no-owner")
    with pytest.raises(HubError, match="no such revision"):
        pull_model(REPO, revision="v9")


def test_token_is_sent_only_as_a_header_and_never_written(hub: HubServer, tiny_run: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture,
                                                          capsys: pytest.CaptureFixture) -> None:
    monkeypatch.delenv("HF_TOKEN")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(HubError, match="needs a Hugging Face token"):
        push_run(tiny_run, REPO)
    push_run(tiny_run, REPO, token=TOKEN, with_training_state=True, private=True)
    pulled = pull_model(REPO, token=TOKEN, with_training_state=True)
    materialise_run(pulled, tmp_path / "copy")
    assert main(["pull", REPO]) == 2  # private, and the CLI has no token: a clear one-line error
    assert "no token was given" in capsys.readouterr().err

    wrong = "hf_WrongTokenWrongTokenWrongToken123456"
    with pytest.raises(HubError) as refused:
        push_run(tiny_run, "tester/other", token=wrong)
    assert "refused the token" in str(refused.value) and wrong not in str(refused.value)

    writes = [r for r in hub.requests if r.method == "POST"]
    assert writes and all(r.headers.get("authorization") in (f"Bearer {TOKEN}", f"Bearer {wrong}") for r in writes)
    for request in hub.requests:
        assert TOKEN.encode() not in request.body and TOKEN not in request.path
    for folder in (tmp_path, tiny_run):
        for path in folder.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), path
    output = capsys.readouterr()
    assert TOKEN not in caplog.text + output.out + output.err


def test_offline_uses_the_cache_and_fails_fast_otherwise(hub: HubServer, tiny_run: Path, go_offline: Callable,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    push_run(tiny_run, REPO, with_training_state=True)
    online = pull_model(REPO)
    go_offline()
    seen = len(hub.requests)
    assert pull_model(REPO) == online
    assert engine.load_generator(f"hf:{REPO}").resolution == 32
    assert len(hub.requests) == seen  # nothing asked of the Hub
    start = time.monotonic()
    with pytest.raises(HubError, match="not in the local cache.*HF_HUB_OFFLINE=1"):
        pull_model("tester/never-pulled")
    with pytest.raises(HubError, match="switched off on this machine"):
        push_run(tiny_run, REPO)
    with pytest.raises(HubError, match="not in the local cache with its training state"):
        pull_model(REPO, with_training_state=True)
    assert time.monotonic() - start < 2

    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    closed = "http://127.0.0.1:9"  # nothing listens there: like a machine without network
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", closed)
    monkeypatch.setattr("huggingface_hub.constants.HUGGINGFACE_CO_URL_TEMPLATE",
                        closed + "/{repo_id}/resolve/{revision}/{filename}")
    start = time.monotonic()
    with pytest.raises(HubError, match="cannot reach the Hugging Face Hub"):
        push_run(tiny_run, REPO)
    assert pull_model(REPO) == online
    assert time.monotonic() - start < 10


def test_cli_push_pull_sample(hub: HubServer, tiny_run: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture) -> None:
    assert main(["push", "--run", str(tiny_run), "--repo", "tester/cli"]) == 0
    assert capsys.readouterr().out.strip() == f"{hub.url}/tester/cli"
    assert main(["pull", "tester/cli"]) == 0
    out = capsys.readouterr()
    assert Path(out.out.strip(), "model.safetensors").is_file() and "train.init_from=" in out.err
    assert main(["train", "--dataset", "builtin:faces:32", "--resolution", "32", "--batch-size", "16",
                 "--max-steps", "1", "--run-dir", str(tmp_path / "tuned"), "--device", "cpu", "--no-progress",
                 "--set", "model.options.ngf=4", "--set", "model.options.ndf=4",
                 "--set", f"train.init_from={out.out.strip()}"]) == 0  # fine-tuning from the pulled model
    config = engine.Run(tmp_path / "tuned").config()
    config.train.init_from = "hf:tester/cli"
    trainer = Trainer(config, tmp_path / "from-hub")
    pulled = engine.load_generator("hf:tester/cli").module.state_dict()
    assert all(torch.equal(v, pulled[k]) for k, v in trainer.G.state_dict().items())
    assert main(["sample", "--run", "hf:tester/cli", "--num", "2", "--out", str(tmp_path / "grid.png")]) == 0
    assert Image.open(tmp_path / "grid.png").size[0] > 32
    assert main(["sample", "--run", "hf:tester/absent", "--num", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert main(["push", "--run", str(tmp_path), "--repo", "tester/cli"]) == 2
    err = capsys.readouterr().err
    assert "no model repo tester/absent" in err and "is not a run directory" in err and "Traceback" not in err
