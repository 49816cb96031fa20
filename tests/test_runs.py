"""Run directories: names chosen by the user, timestamped names, and no two runs in one directory."""

import threading

import pytest

from engine.runs import Run, new_run_dir
from tests.conftest import tiny_config


def test_a_named_run_gets_that_directory_and_a_taken_name_is_refused(tmp_path):
    path = new_run_dir(tiny_config(), tmp_path, name="faces-try_2.1")
    assert path == tmp_path / "faces-try_2.1" and path.is_dir()
    with pytest.raises(FileExistsError, match="faces-try_2.1 already exists"):
        new_run_dir(tiny_config(), tmp_path, name="faces-try_2.1")


@pytest.mark.parametrize("name", ["", "a/b", "..", "my run", "x" * 81, "semi;colon"])
def test_unusable_run_names_are_clear_errors(tmp_path, name):
    with pytest.raises(ValueError, match="letters, digits"):
        new_run_dir(tiny_config(), tmp_path, name=name)
    assert list(tmp_path.iterdir()) == []


def test_runs_started_at_the_same_instant_never_share_a_directory(tmp_path):
    config = tiny_config()
    first, second = new_run_dir(config, tmp_path), new_run_dir(config, tmp_path)
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.endswith("-dcgan-32px")

    paths, barrier = [], threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        paths.append(new_run_dir(config, tmp_path / "burst"))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(paths)) == 8


def test_rename_refuses_the_same_names_as_a_new_run(tmp_path):
    run = Run(new_run_dir(tiny_config(), tmp_path, name="old"))
    with pytest.raises(ValueError, match="letters, digits"):
        run.rename("a/b")
    assert run.rename("new").path == tmp_path / "new"
