"""Push a run's generator to the Hub: model.safetensors + config.json, a model card with pictures, and
optionally the full training state (D, EMA, optimisers, step, metrics) for resuming elsewhere."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, constants

from engine.base.checkpoint import read_checkpoint
from engine.generator import load_generator
from engine.hf.client import api, check_repo_id, ensure_online
from engine.hf.errors import NETWORK_ERRORS, TOKEN_HELP, HubError, hub_error
from engine.hf.token import resolve_token
from engine.hub.assets import interpolation_gif, loss_curve, sample_grid
from engine.hub.card import INTERPOLATION, LOSS, SAMPLES, model_card
from engine.hub.pull import TRAINING_DIR
from engine.runs import Run


@dataclass(frozen=True)
class PushResult:
    """Where a push went: the repo, its page, the commit and the files it holds from this push."""

    repo_id: str
    url: str
    commit: str
    files: tuple[str, ...]


def stage(run: Run, checkpoint: Path, repo_id: str, out: Path, with_training_state: bool) -> list[str]:
    """Write what the repo will hold into ``out`` (model, card, pictures, training state); return repo paths."""
    gen = load_generator(checkpoint)
    gen.save_pretrained(out)
    (out / "assets").mkdir(parents=True, exist_ok=True)
    sample_grid(gen, out / SAMPLES)
    interpolation_gif(gen, out / INTERPOLATION)
    records = run.metrics()
    assets = {SAMPLES, INTERPOLATION} | ({LOSS} if loss_curve(records, out / LOSS) else set())
    if with_training_state:
        training = out / TRAINING_DIR
        (training / "checkpoints").mkdir(parents=True)
        shutil.copyfile(run.config_path, training / "config.json")
        if run.metrics_path.is_file():
            shutil.copyfile(run.metrics_path, training / "metrics.jsonl")
        for name in (checkpoint.name, read_checkpoint(checkpoint).tensors):
            shutil.copyfile(checkpoint.parent / name, training / "checkpoints" / name)
    card = model_card(repo_id, gen.info, records, assets, with_training_state)
    (out / "README.md").write_text(card, encoding="utf-8")
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def push_run(run_dir: str | os.PathLike[str], repo_id: str, *, token: str | None = None, private: bool = False,
             with_training_state: bool = False) -> PushResult:
    """Push the latest checkpoint of a run as a model repo (created if needed) in one commit."""
    repo_id = check_repo_id(repo_id)
    run = Run(run_dir)
    if not run.exists():
        raise HubError(f"{run_dir} is not a run directory (no config.json)")
    checkpoint = run.latest_checkpoint()
    if checkpoint is None:
        raise HubError(f"run {run.name} has no checkpoint yet: train until it writes one, then push")
    token = resolve_token(token)
    if not token:
        raise HubError(f"pushing to {repo_id} needs a Hugging Face token with write access: {TOKEN_HELP}")
    ensure_online(f"push to {repo_id}")
    client = api(token)
    step = read_checkpoint(checkpoint).state.get("step", 0)
    with tempfile.TemporaryDirectory(prefix="gan-studio-push-") as tmp:
        files = stage(run, checkpoint, repo_id, Path(tmp), with_training_state)
        try:
            client.create_repo(repo_id, private=True if private else None, exist_ok=True)
            stale = [f for f in client.list_repo_files(repo_id)
                     if f.startswith(f"{TRAINING_DIR}/") and f not in files]
            operations = ([CommitOperationDelete(f) for f in stale]
                          + [CommitOperationAdd(f, str(Path(tmp) / f)) for f in files])
            commit = client.create_commit(repo_id, operations, commit_message=f"GAN Studio: {run.name}, step {step:,}")
        except NETWORK_ERRORS as exc:
            raise hub_error(exc, f"push to {repo_id}", repo_id, token) from exc
    return PushResult(repo_id, f"{constants.ENDPOINT}/{repo_id}", commit.oid, tuple(files))
