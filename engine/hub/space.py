"""Publish a demo Space: the studio, read-only on its Explore page, bound to a pushed model repo."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, SpaceCardData, constants
from huggingface_hub.errors import RemoteEntryNotFoundError

from engine.base.environment import PROJECT_ROOT
from engine.base.formats import MODEL_FILES
from engine.hf.client import api, check_repo_id, ensure_online
from engine.hf.errors import NETWORK_ERRORS, TOKEN_HELP, HubError, hub_error
from engine.hf.token import resolve_token
from engine.hub.card import with_space_link

APP = PROJECT_ROOT / "app.py"  # the studio's entry point: `streamlit run app.py`
BESIDE_APP = ("requirements.txt", ".streamlit/config.toml")  # what the Space and Streamlit read next to the app


@dataclass(frozen=True)
class SpaceResult:
    """The published Space and the model it shows."""

    space_id: str
    url: str
    commit: str
    model_url: str


def space_files(app: Path = APP) -> list[str]:
    """What a Space needs to run ``app`` (paths relative to its folder): the app, the files read beside it, and
    every file of the packages beside it that it imports, directly or through one another."""
    root, unread = app.parent, [app]
    packages: set[str] = set()
    while unread:
        for name in _imports(unread.pop()) - packages:
            if (root / name / "__init__.py").is_file():
                packages.add(name)
                unread += (root / name).rglob("*.py")
    files = [app.name] + [name for name in BESIDE_APP if (root / name).is_file()]
    for package in sorted(packages):
        files += sorted(p.relative_to(root).as_posix() for p in (root / package).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts)
    return files


def _imports(path: Path) -> set[str]:
    """The top-level names a Python file imports absolutely."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def space_variables(model_repo: str) -> dict[str, str]:
    """Environment of the Space: read-only studio whose Explore page opens ``model_repo``."""
    return {"GAN_STUDIO_READONLY": "1", "GAN_STUDIO_MODEL": model_repo}


def _streamlit_version() -> str | None:
    try:
        return metadata.version("streamlit")
    except metadata.PackageNotFoundError:
        return None


def space_card(model_repo: str) -> str:
    """README.md of the Space: sdk streamlit, the app file, and the model it links to."""
    data = SpaceCardData(title="GAN Studio demo", sdk="streamlit", sdk_version=_streamlit_version(),
                         python_version="3.11", app_file="app.py", models=[model_repo],
                         tags=["gan", "gan-studio", "unconditional-image-generation"], emoji="🎭",
                         colorFrom="indigo", colorTo="pink", pinned=False,
                         short_description=f"Explore the GAN {model_repo}"[:60])
    return (f"---\n{data.to_yaml()}\n---\n\n# GAN Studio demo: {model_repo}\n\n"
            f"Sample faces, walk the latent space and edit along latent directions of the generator "
            f"[{model_repo}]({constants.ENDPOINT}/{model_repo}), in GAN Studio's read-only Explore page.\n\n"
            "The Space runs the studio with `GAN_STUDIO_READONLY=1` and `GAN_STUDIO_MODEL` set to the model repo "
            "(Space variables); it downloads only `model.safetensors` and `config.json` from it.\n")


def publish_space(model_repo: str, space_repo: str | None = None, *, token: str | None = None,
                  private: bool = False, app: Path = APP) -> SpaceResult:
    """Create or update the Space ``space_repo`` (default: the model's name + '-demo') running ``app`` (the
    studio), and link it from the model."""
    model_repo = check_repo_id(model_repo)
    space_repo = check_repo_id(space_repo or f"{model_repo}-demo", "Space")
    token = resolve_token(token)
    if not token:
        raise HubError(f"publishing the Space {space_repo} needs a Hugging Face token with write access: {TOKEN_HELP}")
    ensure_online(f"publish the Space {space_repo}")
    client = api(token)
    space_url = f"{constants.ENDPOINT}/spaces/{space_repo}"
    try:
        files = {s.rfilename for s in client.model_info(model_repo).siblings or []}
    except NETWORK_ERRORS as exc:
        raise hub_error(exc, f"publish a Space for {model_repo}", model_repo, token) from exc
    if not set(MODEL_FILES) <= files:
        raise HubError(f"{model_repo} holds no GAN Studio generator (model.safetensors + config.json): push a run "
                       "to it first")
    try:
        variables = space_variables(model_repo)
        if client.repo_exists(space_repo, repo_type="space"):
            for key, value in variables.items():
                client.add_space_variable(space_repo, key, value)
        else:
            client.create_repo(space_repo, repo_type="space", space_sdk="streamlit",
                               private=True if private else None,
                               space_variables=[{"key": k, "value": v} for k, v in variables.items()])
        code = space_files(app)
        stale = [f for f in client.list_repo_files(space_repo, repo_type="space")
                 if f.endswith(".py") and f not in code]
        operations = ([CommitOperationDelete(f) for f in stale]
                      + [CommitOperationAdd(f, str(app.parent / f)) for f in code]
                      + [CommitOperationAdd("README.md", space_card(model_repo).encode())])
        commit = client.create_commit(space_repo, operations, repo_type="space",
                                      commit_message=f"GAN Studio demo for {model_repo}")
        _link_model(client, model_repo, space_url)
    except NETWORK_ERRORS as exc:
        raise hub_error(exc, f"publish the Space {space_repo}", space_repo, token, kind="Space") from exc
    return SpaceResult(space_repo, space_url, commit.oid, f"{constants.ENDPOINT}/{model_repo}")


def _link_model(client: HfApi, model_repo: str, space_url: str) -> None:
    """Add (or refresh) the 'Try it' line of the model card pointing at the Space."""
    try:
        card = Path(client.hf_hub_download(model_repo, "README.md")).read_text(encoding="utf-8")
    except RemoteEntryNotFoundError:
        card = f"# {model_repo.split('/')[-1]}\n"
    linked = with_space_link(card, space_url)
    if linked != card:
        client.create_commit(model_repo, [CommitOperationAdd("README.md", linked.encode())],
                             commit_message="Link the GAN Studio demo Space")
