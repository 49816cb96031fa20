"""Divergence: finding non-finite training state without per-step host syncs, and saying what to do.

The loop checks the step statistics it already averages at each log step, and every tensor of the
training state (networks, EMA, optimiser moments) with one host sync before each checkpoint, so a
non-finite checkpoint is never written and the last finite one is never pruned.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import torch

from engine.config import OptimConfig

ROLLBACK_LR_FACTOR = 0.5  # each rollback multiplies optim.lr_g and optim.lr_d by this


class Divergence(Exception):
    """Training state became non-finite at ``step``; ``detail`` says what (raised inside the loop)."""

    def __init__(self, step: int, detail: str) -> None:
        super().__init__(f"step {step}: {detail}")
        self.step, self.detail = step, detail


class DivergenceError(RuntimeError):
    """A run diverged and could not (or was told not to) roll back: the run stops as failed."""


def halve_learning_rates(optim: OptimConfig) -> None:
    """Lower ``optim.lr_g`` and ``optim.lr_d`` as a rollback does (in place)."""
    optim.lr_g *= ROLLBACK_LR_FACTOR
    optim.lr_d *= ROLLBACK_LR_FACTOR


def nonfinite_stats(names: Sequence[str], values: Sequence[float]) -> list[str]:
    """The statistics among ``names`` whose averaged ``values`` are NaN or infinite."""
    return [name for name, value in zip(names, values) if not math.isfinite(value)]


def nonfinite_tensors(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity (one host sync in all)."""
    named = [(name, t) for name, t in tensors.items() if t.is_floating_point()]
    if not named:
        return []
    finite = torch.stack([torch.isfinite(t).all() for _, t in named]).tolist()
    return [name for (name, _), ok in zip(named, finite) if not ok]


def state_tensors(modules: Mapping[str, torch.nn.Module], optimizers: Mapping[str, torch.optim.Optimizer]
                  ) -> dict[str, torch.Tensor]:
    """Every tensor a checkpoint would hold, by a readable name (module prefix, then parameter)."""
    tensors = {f"{prefix}.{name}": t for prefix, module in modules.items() for name, t in module.state_dict().items()}
    for prefix, opt in optimizers.items():
        for index, state in opt.state_dict()["state"].items():
            tensors.update({f"{prefix}.{index}.{key}": v for key, v in state.items() if torch.is_tensor(v)})
    return tensors


def describe_tensors(names: Iterable[str]) -> str:
    """'the D and opt_D tensors (D.main.0.weight, …)': which parts of the state went bad."""
    names = list(names)
    owners = sorted({name.split(".", 1)[0] for name in names})
    shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
    return f"the {_listed(owners)} tensors are no longer finite ({shown})"


def describe_stats(names: Sequence[str], steps: int, step: int) -> str:
    return f"{_listed(names)} became NaN or infinite in the {steps} step(s) up to step {step}"


def _listed(names: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def advice(lr_g: float, lr_d: float, bf16: bool, last_good: int | None, rollbacks_exhausted: bool) -> str:
    """What to try after a divergence, naming the config keys."""
    where = (f"Resume continues from the last finite checkpoint (step {last_good})" if last_good is not None
             else "No finite checkpoint was written yet, so start the run again")
    tips = [f"lower the learning rates (now optim.lr_g={lr_g:g}, optim.lr_d={lr_d:g}), e.g. "
            f"--set optim.lr_d={lr_d * ROLLBACK_LR_FACTOR:g} --set optim.lr_g={lr_g * ROLLBACK_LR_FACTOR:g}"]
    if not rollbacks_exhausted:
        tips.append("set train.on_divergence=rollback to restore the last finite checkpoint with halved "
                    "learning rates automatically")
    if bf16:
        tips.append("train in full precision (train.precision=fp32)")
    return f"{where}. Try: " + "; or ".join(tips)
