"""The model card: README.md with YAML metadata in the Hub's conventions, pictures, metrics and how to load it."""

from __future__ import annotations

import re
from typing import Any, Collection, Mapping, Sequence

from huggingface_hub import EvalResult, ModelCardData

from engine.base import records
from engine.hf.client import LIBRARY
from engine.metrics import display_label, list_metrics, parse_key

TAGS = ["gan", "unconditional-image-generation", "gan-studio", "pytorch"]
TASK = "unconditional-image-generation"
SAMPLES, INTERPOLATION, LOSS = "assets/samples.png", "assets/interpolation.gif", "assets/loss.png"
TRY_IT = "**Try it:**"


def latest_metrics(lines: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, int | None]]:
    """The last evaluated value of every metric result key, with the step it was measured at. The live
    metric's records (a cheap training signal, not an evaluation protocol) are left out."""
    latest: dict[str, tuple[float, int | None]] = {}
    for record in records.eval_records(lines, live=False):
        for key, value in record.values.items():
            try:
                parse_key(key)
            except ValueError:
                continue
            latest[key] = (float(value), record.step)
    return latest


def hub_dataset(spec: str | None) -> str | None:
    """'hf:owner/name[:split]' -> 'owner/name'; None for other dataset specs."""
    if not spec or not spec.startswith("hf:"):
        return None
    return spec.removeprefix("hf:").split(":", 1)[0]


def metadata(repo_id: str, info: Mapping[str, Any], metrics: Mapping[str, tuple[float, int | None]]) -> str:
    """The card's YAML block (without the --- fences)."""
    spec = info.get("dataset") or "unknown"
    dataset = hub_dataset(spec)
    results = [EvalResult(task_type=TASK, dataset_type=dataset or "custom", dataset_name=spec,
                          metric_type=parse_key(key)[0], metric_name=display_label(key), metric_value=round(value, 6))
               for key, (value, _) in metrics.items()]
    data = ModelCardData(library_name=LIBRARY, pipeline_tag=TASK, tags=TAGS + [str(info["model"])],
                         datasets=[dataset] if dataset else None, model_name=repo_id.split("/")[-1],
                         eval_results=results or None)
    return data.to_yaml()


def _description(output: str) -> str:
    for metric in list_metrics():
        if output in metric.outputs:
            return metric.description
    return output


def metrics_section(metrics: Mapping[str, tuple[float, int | None]]) -> str:
    if not metrics:
        return "No metrics were computed for this model (`python -m engine metrics --run RUN` adds them).\n"
    rows = ["| Metric | Value | Step | Protocol |", "| --- | --- | --- | --- |"]
    for key, (value, step) in metrics.items():
        output, count = parse_key(key)
        rows.append(f"| {display_label(key)} | {value:.4g} | {step if step is not None else '?'} | "
                    f"{_description(output)}; {count:,} generated images |")
    return "\n".join(rows) + (
        "\n\nEach value carries the number of **generated** images it was computed on (FID-2k: 2,000). Image *i* "
        "comes from seed *i*; metrics that compare with real images use min(N, n) training images chosen with a "
        "fixed seed. Inception metrics use the 2015-12-05 TensorFlow Inception-v3 weights through torch-fidelity "
        "0.4.0 with TensorFlow-1.x bilinear resizing, as the original FID code. Values are comparable only at the "
        "same count; FID-50k is the full protocol.\n")


def _summary(info: Mapping[str, Any]) -> str:
    classes = list(info.get("class_names") or [])
    conditional = (f", conditional on {len(classes)} classes ({', '.join(classes)})"
                   if info.get("num_classes") and classes else "")
    trained = ""
    if info.get("step") is not None:
        trained = f" for {int(info['step']):,} steps ({int(info.get('images') or 0):,} images)"
    return (f"A **{info['model']}** GAN generator: {info['resolution']}×{info['resolution']} px RGB images from a "
            f"{info['latent_dim']}-dimensional latent{conditional}, trained with GAN Studio on "
            f"`{info.get('dataset') or 'unknown data'}`{trained}. The weights are the EMA generator, in "
            "safetensors.")


def model_card(repo_id: str, info: Mapping[str, Any], lines: Sequence[Mapping[str, Any]],
               assets: Collection[str], with_training_state: bool) -> str:
    """README.md for a pushed generator; ``assets`` are the picture paths that were written (``lines``:
    the run's metrics.jsonl)."""
    metrics = latest_metrics(lines)
    parts = [f"---\n{metadata(repo_id, info, metrics)}\n---\n", f"# {repo_id.split('/')[-1]}\n", _summary(info) + "\n"]
    if SAMPLES in assets:
        parts.append(f"![Samples for seeds 0 to 15]({SAMPLES})\n\n*Seeds 0–15, truncation 1.0.*\n")
    if INTERPOLATION in assets:
        parts.append(f"## Latent interpolation\n\n![Spherical interpolation between seeds]({INTERPOLATION})\n")
    parts.append("## Training\n")
    parts.append(f"![Generator and discriminator losses]({LOSS})\n" if LOSS in assets
                 else "No loss curve was recorded.\n")
    parts.append("## Metrics\n\n" + metrics_section(metrics))
    parts.append(_how_to_load(repo_id, with_training_state))
    return "\n".join(parts)


def _how_to_load(repo_id: str, with_training_state: bool) -> str:
    text = f"""## How to use it

With GAN Studio's `engine` package on the path (the repo holds `model.safetensors` + `config.json`; only
safetensors and JSON are ever loaded):

```python
from engine import Generator

gen = Generator.from_pretrained("{repo_id}")
images = gen.sample(seeds=range(16))  # uint8 array, N×H×W×3
```

From the command line:

```bash
python -m engine pull {repo_id}
python -m engine sample --run hf:{repo_id} --num 64 --out grid.png
python -m engine train --dataset my_faces/ --set train.init_from="$(python -m engine pull {repo_id})"
```

The last line fine-tunes it on other images (transfer learning); the studio's **Explore** page opens pulled
models too.
"""
    if with_training_state:
        text += f"""
### Resume training

This repo also holds the full training state (`training/`: discriminator, EMA, optimisers, step, metrics):

```bash
python -m engine pull {repo_id} --with-training-state --run-dir runs/resumed
python -m engine train --resume --run-dir runs/resumed --max-steps N
```

Give `--max-steps` (or `--max-images`) beyond the pushed step when the run had reached its limit.
"""
    return text


def with_space_link(card: str, space_url: str) -> str:
    """The card with a 'Try it' line linking the demo Space under its title (replacing an older one)."""
    line = f"{TRY_IT} [interactive demo Space]({space_url})"
    if TRY_IT in card:
        return re.sub(rf"^{re.escape(TRY_IT)}.*$", line, card, count=1, flags=re.MULTILINE)
    match = re.search(r"^# .*$", card, flags=re.MULTILINE)
    if match is None:
        return card.rstrip("\n") + f"\n\n{line}\n"
    return card[:match.end()] + f"\n\n{line}" + card[match.end():]
