"""Pull a generator from the Hub into the local Hugging Face cache: safetensors and JSON only, never pickles."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError

from engine.base.checkpoint import read_checkpoint
from engine.base.environment import runs_root
from engine.base.formats import ENCODER_FILE, MODEL_FILE, MODEL_FILES, CheckpointError, GeneratorInfo
from engine.hf.client import api, check_repo_id, reachable
from engine.hf.errors import NETWORK_ERRORS, HubError, PickleRefused, hub_error
from engine.hf.token import resolve_token
from engine.runs import Run

HUB_PREFIX = "hf:"  # 'hf:owner/name[@revision]' names a pushed generator wherever a path to one is taken
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
TRAINING_DIR = "training"
MODEL_PATTERNS = [*MODEL_FILES, ENCODER_FILE, "README.md"]
TRAINING_PATTERNS = [f"{TRAINING_DIR}/*.json", f"{TRAINING_DIR}/*.jsonl", f"{TRAINING_DIR}/*.safetensors"]


@dataclass(frozen=True)
class PulledModel:
    """A generator repo in the local Hub cache: ``path`` holds model.safetensors + config.json."""

    repo_id: str
    revision: str  # the commit it was pulled at
    path: Path

    @property
    def training_dir(self) -> Path | None:
        """The pushed training state (a run directory: config.json, checkpoints/, metrics.jsonl), if pulled."""
        training = self.path / TRAINING_DIR
        return training if (training / "config.json").is_file() else None

    def info(self) -> GeneratorInfo:
        """Its config.json."""
        return GeneratorInfo.read(self.path, "its config.json")


def pulled_path(spec: str, training_state: bool = False) -> Path:
    """The local folder of 'hf:owner/name[@revision]', pulled unless cached: with ``training_state``, the pushed
    training state (a run directory) when the repo has one, else the generator folder."""
    repo_id, _, revision = spec.removeprefix(HUB_PREFIX).partition("@")
    if training_state:
        try:
            training = pull_model(repo_id, revision or None, with_training_state=True).training_dir
        except HubError:
            training = None
        if training is not None:
            return training
    return pull_model(repo_id, revision or None).path


def pull_model(repo_id: str, revision: str | None = None, *, token: str | None = None,
               with_training_state: bool = False) -> PulledModel:
    """Download ``repo_id`` (once; the cache answers offline) and check it is a GAN Studio generator."""
    repo_id = check_repo_id(repo_id)
    token = resolve_token(token)
    patterns = MODEL_PATTERNS + (TRAINING_PATTERNS if with_training_state else [])
    reason = reachable()
    if reason:
        cached = _cached(repo_id, revision, patterns)
        if cached is None:
            state = " with its training state" if with_training_state else ""
            raise HubError(f"cannot pull {repo_id}: it is not in the local cache{state} and the Hugging Face Hub "
                           f"cannot be reached ({reason}); connect to the internet once to download it")
        return _checked(PulledModel(repo_id, cached.name, cached), with_training_state)
    client = api(token)
    try:
        info = client.model_info(repo_id, revision=revision)
        _check_files(repo_id, [s.rfilename for s in info.siblings or []], with_training_state)
        path = Path(client.snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except NETWORK_ERRORS as exc:
        raise hub_error(exc, f"pull {repo_id}", repo_id, token) from exc
    return _checked(PulledModel(repo_id, path.name, path), with_training_state)


def _cached(repo_id: str, revision: str | None, patterns: list[str]) -> Path | None:
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns, local_files_only=True))
    except LocalEntryNotFoundError:
        return None


def _check_files(repo_id: str, files: list[str], with_training_state: bool) -> None:
    missing = [name for name in MODEL_FILES if name not in files]
    if missing:
        pickles = sorted(f for f in files if f.lower().endswith(PICKLE_SUFFIXES))
        if pickles:
            raise PickleRefused(
                f"refusing {repo_id}: its weights are pickle files ({', '.join(pickles[:3])}), which GAN Studio never "
                "loads because unpickling can run arbitrary code; ask the author for model.safetensors + "
                "config.json (python -m engine push writes them)")
        raise HubError(f"{repo_id} is not a GAN Studio generator: it has no {' and no '.join(missing)} "
                       "(python -m engine push writes both)")
    if with_training_state and f"{TRAINING_DIR}/config.json" not in files:
        raise HubError(f"{repo_id} was pushed without its training state: pull it without --with-training-state "
                       "to sample or fine-tune, or push it again with --with-training-state")


def _checked(pulled: PulledModel, with_training_state: bool) -> PulledModel:
    try:
        pulled.info()
    except CheckpointError as exc:
        raise HubError(f"{pulled.repo_id} is not a GAN Studio generator: {exc}") from None
    if not (pulled.path / MODEL_FILE).is_file():
        raise HubError(f"{pulled.repo_id} has no model.safetensors in the local cache; pull it again online")
    if with_training_state and pulled.training_dir is None:
        raise HubError(f"{pulled.repo_id} was pushed without its training state; pull it without "
                       "--with-training-state to sample or fine-tune")
    return pulled


def cached_models() -> list[PulledModel]:
    """GAN Studio generators already pulled into the Hugging Face cache, at the revision 'main' last pointed to."""
    found = []
    for folder in sorted(Path(constants.HF_HUB_CACHE).glob("models--*--*")):
        try:
            commit = (folder / "refs" / "main").read_text().strip()
        except OSError:
            continue
        snapshot = folder / "snapshots" / commit
        try:
            GeneratorInfo.read(snapshot)
        except CheckpointError:
            continue
        if (snapshot / MODEL_FILE).is_file():
            repo_id = folder.name.removeprefix("models--").replace("--", "/", 1)
            found.append(PulledModel(repo_id, commit, snapshot))
    return found


def materialise_run(pulled: PulledModel, run_dir: str | os.PathLike[str] | None = None) -> Path:
    """Copy a pulled training state into a new run directory that ``train --resume`` continues."""
    training = pulled.training_dir
    if training is None:
        raise HubError(f"{pulled.repo_id} was pulled without its training state: pull it with --with-training-state")
    latest = Run(training).latest_checkpoint()
    if latest is None:
        raise HubError(f"the training state of {pulled.repo_id} has no checkpoint, so it cannot be resumed")
    try:
        state = read_checkpoint(latest).state
    except CheckpointError as exc:
        raise HubError(f"the training state of {pulled.repo_id} cannot be resumed: {exc}") from None
    target = Path(run_dir) if run_dir else runs_root() / f"{pulled.repo_id.replace('/', '--')}-{pulled.revision[:8]}"
    if target.exists() and any(target.iterdir()):
        raise HubError(f"run directory {target} already exists: resume it, or choose another --run-dir")
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    for source in sorted(training.rglob("*")):
        if source.is_file():
            destination = partial / source.relative_to(training)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
    if target.exists():
        target.rmdir()
    os.replace(partial, target)
    Run(target).write_status(state="stopped", step=state.get("step", 0), images=state.get("images", 0),
                             progress=None, error=None, pid=None)
    return target
