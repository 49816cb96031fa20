import json

import numpy as np
import pytest
from PIL import Image

from engine.cli import main


def test_train_sample_runs_and_export(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--dataset", "builtin:faces:128", "--resolution", "32", "--batch-size", "16",
                 "--max-steps", "6", "--run-dir", str(run), "--device", "cpu", "--seed", "3",
                 "--set", "model.options.ngf=8", "--set", "model.options.ndf=8", "--set", "optim.lr_d=1e-4"])
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["seed"] == 3 and config["optim"]["lr_d"] == 1e-4
    assert config["model"]["options"]["ngf"] == 8 and config["model"]["options"]["latent_dim"] == 100

    assert main(["sample", "--run", str(run), "--num", "4", "--out", str(tmp_path / "grid.png")]) == 0
    assert Image.open(tmp_path / "grid.png").size[0] > 64
    assert main(["sample", "--run", str(run), "--num", "3", "--out", str(tmp_path / "s.npz")]) == 0
    images = np.load(tmp_path / "s.npz")["images"]
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert main(["sample", "--run", str(run), "--num", "2", "--seed", "7", "--out", str(tmp_path / "pngs")]) == 0
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["seed000007.png", "seed000008.png"]

    assert main(["runs", "--root", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "run" in listing and "finished" in listing and "100%" in listing

    assert main(["train", "--run-dir", str(run), "--resume", "--max-steps", "9", "--device", "cpu"]) == 0
    assert json.loads((run / "status.json").read_text())["step"] == 9
    assert json.loads((run / "config.json").read_text())["train"]["max_steps"] == 9
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "exp")]) == 0
    assert (tmp_path / "exp" / "model.safetensors").is_file()


def test_existing_run_without_resume_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--dataset", "builtin:faces:64", "--resolution", "32", "--batch-size", "16", "--max-steps", "1",
            "--run-dir", str(run), "--device", "cpu", "--set", "model.options.ngf=4", "--set", "model.options.ndf=4"]
    assert main(args) == 0
    assert main(args) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["train", "--bogus"], "unrecognized arguments"),
    (["train", "--resolution", "big"], "invalid int value"),
    (["train", "--max-steps", "-1"], "must be ≥ 0"),
])
def test_bad_flags_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "--dataset", str(tmp_path / "nothing"), "--device", "cpu",
                 "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert main(["train", "--set", "train.batch_size=abc", "--run-dir", str(tmp_path / "r")]) == 2
    assert "batch_size must be int" in capsys.readouterr().err
    assert main(["sample", "--run", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    assert main(["train", "--device", "cuda:7", "--run-dir", str(tmp_path / "r")]) == 2


def test_signal_handlers_are_restored_after_training(tmp_path):
    import signal

    before = signal.getsignal(signal.SIGTERM)
    assert main(["train", "--dataset", "builtin:faces:64", "--resolution", "32", "--batch-size", "16",
                 "--max-steps", "1", "--run-dir", str(tmp_path / "r"), "--device", "cpu",
                 "--set", "model.options.ngf=4", "--set", "model.options.ndf=4"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before


def test_config_mistakes_fail_before_the_dataset_loads(tmp_path, capsys):
    assert main(["train", "--dataset", str(tmp_path / "not-there"), "--device", "cpu", "--run-dir", str(tmp_path / "r"),
                 "--set", "data.diffaugment=color,zoom"]) == 2
    err = capsys.readouterr().err
    assert "data.diffaugment: unknown DiffAugment policy zoom" in err and "Traceback" not in err
