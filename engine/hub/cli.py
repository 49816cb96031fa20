"""`python -m engine push | pull | publish-space`: the Hugging Face Hub from the command line.

The token comes from $HF_TOKEN or the saved `hf auth login`; there is deliberately no --token flag, so it never
lands in shell history or process lists.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `push`, `pull` and `publish-space` subcommands."""
    token = "The token comes from $HF_TOKEN or the saved `hf auth login` (it needs write access)."
    p = subparsers.add_parser("push", help="push a run's generator (and a model card) to a Hugging Face model repo",
                              description=f"Push the run's latest EMA generator, a model card with samples, an "
                              f"interpolation and the loss curve, and optionally the training state. {token}")
    p.add_argument("--run", required=True, type=Path, help="run directory (its latest checkpoint is pushed)")
    p.add_argument("--repo", required=True, help="owner/name of the model repo (created if needed)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--with-training-state", action="store_true",
                   help="also push D, EMA, optimisers and step, so the run can be resumed elsewhere")
    p.set_defaults(func=cmd_push)

    p = subparsers.add_parser("pull", help="download a generator from the Hub into the local cache; prints its path")
    p.add_argument("repo", help="owner/name of a model repo pushed by GAN Studio")
    p.add_argument("--revision", help="branch, tag or commit (default main)")
    p.add_argument("--with-training-state", action="store_true", help="also download the pushed training state")
    p.add_argument("--run-dir", type=Path,
                   help="copy the training state into this new run directory, to continue with train --resume")
    p.set_defaults(func=cmd_pull)

    p = subparsers.add_parser("publish-space", help="create or update a demo Space (read-only studio) for a model",
                              description=f"A Streamlit Space running the studio read-only, bound to the model; the "
                              f"model card links to it. {token}")
    p.add_argument("--model", required=True, help="owner/name of the pushed model repo")
    p.add_argument("--space", help="owner/name of the Space (default: the model's name + '-demo')")
    p.add_argument("--private", action="store_true", help="create the Space private")
    p.set_defaults(func=cmd_publish_space)


def cmd_push(args: argparse.Namespace) -> int:
    from engine.hub.push import push_run  # each subcommand imports its module when run: --help stays light

    result = push_run(args.run, args.repo, private=args.private, with_training_state=args.with_training_state)
    print(f"pushed {len(result.files)} files to {result.url} (commit {result.commit[:10]})", file=sys.stderr)
    print(result.url)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from engine.hub.pull import materialise_run, pull_model

    with_state = args.with_training_state or args.run_dir is not None
    pulled = pull_model(args.repo, args.revision, with_training_state=with_state)
    print(f"{pulled.repo_id} at {pulled.revision[:10]} is in {pulled.path}", file=sys.stderr)
    if args.run_dir is not None:
        run_dir = materialise_run(pulled, args.run_dir)
        print(f"training state copied to {run_dir}: continue with\n"
              f"  python -m engine train --resume --run-dir {run_dir}", file=sys.stderr)
    else:
        print(f"sample it:    python -m engine sample --run hf:{pulled.repo_id} --out grid.png\n"
              f"fine-tune it: python -m engine train --dataset DATA --set train.init_from={pulled.path}",
              file=sys.stderr)
    print(pulled.path)
    return 0


def cmd_publish_space(args: argparse.Namespace) -> int:
    from engine.hub.space import publish_space

    result = publish_space(args.model, args.space, private=args.private)
    print(f"Space {result.space_id} shows {result.model_url}; it builds in a few minutes", file=sys.stderr)
    print(result.url)
    return 0
