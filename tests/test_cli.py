import json

import numpy as np
import pytest
import torch
from PIL import Image

from engine.cli import build_parser, main, resolve_train_config
from engine.config import ConfigError
from engine.models import get_model
from engine.presets import PRESETS, RECOMMENDED, SIZES, recipe
from engine.runs import runs_root

CPU = torch.device("cpu")


def test_train_sample_runs_and_export(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--preset", "quick-faces-32", "--dataset", "builtin:faces:128", "--batch-size", "16",
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
    args = ["train", "--preset", "quick-faces-32", "--dataset", "builtin:faces:64", "--batch-size", "16",
            "--max-steps", "1", "--run-dir", str(run), "--device", "cpu",
            "--set", "model.options.ngf=4", "--set", "model.options.ndf=4"]
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
    assert main(["train", "--preset", "quick-faces-32", "--dataset", "builtin:faces:64", "--batch-size", "16",
                 "--max-steps", "1", "--run-dir", str(tmp_path / "r"), "--device", "cpu",
                 "--set", "model.options.ngf=4", "--set", "model.options.ndf=4"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before


def test_config_mistakes_fail_before_the_dataset_loads(tmp_path, capsys):
    assert main(["train", "--dataset", str(tmp_path / "not-there"), "--device", "cpu", "--run-dir", str(tmp_path / "r"),
                 "--set", "data.diffaugment=color,zoom"]) == 2
    err = capsys.readouterr().err
    assert "data.diffaugment must be a comma list" in err and "zoom" in err and "Traceback" not in err


def _resolved(*flags: str):
    """The config and note of ``train --device cpu FLAGS``, its device set back to the recipes' 'auto'."""
    config, note = resolve_train_config(build_parser().parse_args(["train", "--device", "cpu", *flags]))
    assert config.train.device == "cpu"
    config.train.device = "auto"
    return config, note


@pytest.mark.parametrize("dataset, kind", [(None, "builtin"), ("builtin:faces:500", "builtin"),
                                           ("/data/cats", "photos")])
def test_without_a_preset_the_recommended_recipe_for_the_images_is_sized_for_the_device(dataset, kind):
    config, note = _resolved(*(["--dataset", dataset] if dataset else []))
    name = RECOMMENDED["cpu"][kind]
    expected = recipe(name, CPU)[0]
    expected.data.spec = dataset or "builtin:faces"
    assert config == expected
    assert note == f"recipe {name} (recommended for this device and these images): {recipe(name, CPU)[1]}"
    assert note.split(": ", 1)[1].startswith("CPU size applied: ")


@pytest.mark.parametrize("size", ["auto", "cpu", "small-gpu", "large-gpu", "source"])
def test_size_flag_picks_the_size_of_a_preset(size):
    config, note = _resolved("--preset", "afhq-dcgan-128", "--size", size)
    published = PRESETS["afhq-dcgan-128"]
    if size == "source":
        assert config == published and "Source size applied: the recipe as published" in note
        return
    expected = SIZES["afhq-dcgan-128"]["cpu" if size == "auto" else size]
    assert (config.train.batch_size, config.data.resolution) == (expected.batch_size, expected.resolution)
    assert config.model.options == {**published.model.options, **expected.options}
    assert note.startswith("recipe afhq-dcgan-128: ") and "size applied" in note


def test_size_is_refused_where_there_is_no_recipe_to_size(tmp_path, capsys):
    (tmp_path / "config.json").write_text(PRESETS["quick-faces-32"].to_json())
    assert main(["train", "--config", str(tmp_path / "config.json"), "--size", "cpu", "--device", "cpu"]) == 2
    assert "--size sizes a recipe" in capsys.readouterr().err


def test_train_prints_the_size_it_applied(tmp_path, capsys):
    assert main(["train", "--preset", "quick-faces-32", "--dataset", "builtin:faces:64", "--max-steps", "1",
                 "--device", "cpu", "--run-dir", str(tmp_path / "r"), "--no-progress",
                 "--set", "model.options.ngf=4", "--set", "model.options.ndf=4"]) == 0
    assert "recipe quick-faces-32: CPU size applied: the recipe as published (batch 32, 32 px)." in \
        capsys.readouterr().err


TINY = {"fastgan": {"latent_dim": 32, "ngf": 4, "ndf": 4}, "wgan-gp": {"ngf": 4, "ndf": 4},
        "aae": {"ngf": 4, "nef": 4, "latent_dim": 16, "d_hidden": 32}}


@pytest.mark.parametrize("model", sorted(TINY))
def test_model_flag_takes_the_loss_the_model_is_defined_with(model, tmp_path):
    """A bce recipe switched to a model defined with another loss trains with that loss."""
    run = tmp_path / "run"
    options = [f"--set=model.options.{key}={value}" for key, value in TINY[model].items()]
    assert main(["train", "--preset", "face-course-dcgan-64-ttur", "--model", model, "--resolution", "32",
                 "--dataset", "builtin:faces:32", "--batch-size", "8", "--max-steps", "1", "--device", "cpu",
                 "--run-dir", str(run), "--no-progress", "--set", "optim.n_critic=1", "--set", "train.grid_size=4",
                 *options]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["name"] == model and config["loss"]["kind"] == get_model(model).loss


def test_name_gives_the_run_directory(capsys):
    args = ["train", "--preset", "quick-faces-32", "--name", "my-first-faces", "--dataset", "builtin:faces:64",
            "--max-steps", "1", "--device", "cpu", "--no-progress",
            "--set", "model.options.ngf=4", "--set", "model.options.ndf=4"]
    assert main(args) == 0
    assert (runs_root() / "my-first-faces" / "config.json").is_file()
    assert main(args) == 2 and "my-first-faces" in capsys.readouterr().err  # taken: refused, not overwritten
    assert main(["train", "--name", "x", "--run-dir", "elsewhere", "--device", "cpu"]) == 2
    assert "--name and --run-dir" in capsys.readouterr().err
    assert main(["train", "--name", "../up", "--device", "cpu"]) == 2
    assert "--name: run name '../up'" in capsys.readouterr().err


def test_processes_of_one_torchrun_share_the_named_run_directory(monkeypatch):
    from engine.cli import _run_dir

    config = PRESETS["quick-faces-32"]
    args = build_parser().parse_args(["train", "--name", "shared-run"])
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert _run_dir(args, config, main_rank=False) == runs_root() / "shared-run"
    assert not (runs_root() / "shared-run").exists()  # the main process creates it
    with pytest.raises(ConfigError, match="--run-dir DIR or --name NAME"):
        _run_dir(build_parser().parse_args(["train"]), config, main_rank=True)
