"""The training loop: one process (or one rank under torchrun) training one run directory."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import statistics
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator, cast

import numpy as np
import torch

from engine import metrics
from engine.base import records
from engine.base.checkpoint import CheckpointError, load_checkpoint, restore_optimizer, save_checkpoint, split_prefix
from engine.base.files import atomic_write
from engine.config import Config, ConfigError, MetricsConfig
from engine.data import load_dataset
from engine.data.augment import Augmenter, BatchRandom
from engine.data.device_data import DeviceDataset
from engine.device import OUT_OF_MEMORY_ADVICE, configure_backends, detect_device, use_bf16
from engine.doctor import Doctor
from engine.expectations import record_speed
from engine.grid import image_grid, save_png, to_uint8
from engine.metrics.live import LiveFID, LiveSchedule, LiveSchedules, LiveSWD
from engine.models import (GanPair, Growing, ReportsGrowth, build_loss, build_model, check_model_config,
                           check_model_size, resolve_options)
from engine.runs import LAUNCH_ENV, Run, RunLock, file_clock
from engine.train import distributed
from engine.train.init import initial_weights
from engine.train.ema import EMA
from engine.train.guard import (Divergence, DivergenceError, advice, describe_stats, describe_tensors, nonfinite_stats,
                                nonfinite_tensors, state_tensors)
from engine.train.layout import wants_channels_last
from engine.train.resume import check_resumable
from engine.train.schedule import Schedule, check_schedule, halve_learning_rate_curves
from engine.train.steps import STEPS, Autoencoder, Batch, StepParts

log = logging.getLogger(__name__)
ProgressFn = Callable[[dict[str, Any]], None]
STATUS_EVERY = 2.0  # seconds of wall time between status rewrites while training


def launch_time() -> float:
    """When this worker was launched (``start_training`` sets $GAN_STUDIO_LAUNCHED_AT), else now."""
    launched = os.environ.get(LAUNCH_ENV)
    return float(launched) if launched else file_clock()


class StopFlag:
    """Set by SIGTERM/SIGINT (while installed) so the loop finishes the step and saves."""

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def installed(self) -> Iterator["StopFlag"]:
        """Handle SIGTERM/SIGINT inside the block; the previous handlers come back after it."""
        signals = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, self._handle) for sig in signals}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True


class Trainer:
    """Builds everything a run needs from its Config and trains until a stop condition."""

    def __init__(self, config: Config, run_dir: str | Path, resume: bool = False) -> None:
        """Lock the run directory (one writer per run), check everything, then build. A failure leaves
        the run as it was, except a status this launch wrote (it then says failed, and why)."""
        config.validate()
        self.dist = distributed.setup()
        self.config = config
        self.run = Run(run_dir)
        self._launched_at = launch_time()
        self._wrote_status = False
        self.lock = RunLock.acquire(self.run.path) if self.dist.is_main else None
        try:
            self._build(config, resume)
        except BaseException as exc:
            self._failed_start(exc)
            raise

    def _build(self, config: Config, resume: bool) -> None:
        if not resume and self.dist.is_main and self.run.has_history():
            raise FileExistsError(f"run directory {self.run.path} already holds a run: resume it (--resume), "
                                  "or choose another directory")
        if self.dist.is_main:
            self.run.clean_leftovers()
        self.device = self.dist.device if self.dist.device is not None else detect_device(config.train.device)
        configure_backends(self.device, config.train.deterministic)
        self.bf16 = use_bf16(self.device, config.train.precision)
        config.model.options = resolve_options(config.model.name, config.model.options)
        if config.train.batch_size % self.dist.world_size:
            raise ConfigError(f"batch size {config.train.batch_size} is not divisible by {self.dist.world_size} processes")
        self.local_batch = config.train.batch_size // self.dist.world_size
        if config.train.sync_batchnorm and self.dist.active and self.device.type != "cuda":
            raise ConfigError("train.sync_batchnorm needs CUDA devices (PyTorch's SyncBatchNorm); "
                              "turn it off for CPU processes")
        self.capabilities = check_model_config(config).capabilities
        self.loss = build_loss(config.loss)
        check_schedule(config, self.loss)
        if config.metrics.every_images:
            check_metrics(config.metrics)
        self.live_fid = LiveFID(config.metrics, self.device)  # finds the network when first due
        self.live_schedule = LiveSchedules(LiveSchedule(config.metrics.live_budget), self.live_fid.schedule)
        self.live: LiveSWD | None = None  # built at the first live evaluation (off the start-up path)
        self.live_due: set[str] = set()  # the live metrics due now: "swd", "fid"

        checkpoint = self._latest_valid_checkpoint() if resume else None
        meta = checkpoint[0] if checkpoint else {}
        if checkpoint:
            check_resumable(config, meta, self.run.name)
        self.step, self.images = meta.get("step", 0), meta.get("images", 0)
        self.rollbacks = meta.get("rollbacks", 0)
        self.train_seconds = meta.get("train_seconds", 0.0)
        self.wall_base = meta.get("wall_seconds", self.train_seconds)  # wall time of earlier sessions
        self._clear_stale_stop()
        self._status("starting", phase="loading the dataset")
        data = distributed.main_first(lambda: load_dataset(config.data.spec, config.data.resolution,
                                                           mmap=self.dist.active), self.dist)
        self.dataset_info: dict[str, Any] = {"spec": config.data.spec, "fingerprint": data.fingerprint,
                                             "count": len(data), "classes": data.class_names,
                                             "skipped": len(data.skipped)}
        self.data = DeviceDataset(data.images, data.labels, self.device, config.train.seed, self.dist.rank,
                                  self.dist.world_size)
        self.real_images = data.images
        self._status("starting", phase="building the model")
        check_model_size(config.model.name, config.model.options, config.data.resolution, len(data.class_names),
                         self.local_batch, device=self.device)
        torch.manual_seed(config.train.seed)
        pair = build_model(config.model.name, config.model.options, config.data.resolution, len(data.class_names))
        self.latent_dim, self.num_classes = pair.latent_dim, pair.num_classes
        self._status("starting", phase="choosing the memory layout")
        self.channels_last, self._layout_decided = self._memory_layout(pair, meta)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.G = pair.generator.to(self.device).to(memory_format=memory_format)
        self.D = pair.discriminator.to(self.device).to(memory_format=memory_format)
        self.E = pair.encoder.to(self.device).to(memory_format=memory_format) if pair.encoder is not None else None
        self.ema = EMA(self.G, config.optim.ema_halflife_images, config.optim.ema_rampup)
        trained = Autoencoder(self.E, self.G) if self.E is not None else self.G
        self.G_train, self.D_train = distributed.wrap(trained, self.D, self.dist, config.train.sync_batchnorm,
                                                      self.capabilities)
        self.D_judge = self.D  # D as the G step calls it (compiled with the rest when asked)
        if config.train.compile != "off":
            self.G_train, self.D_train, self.D_judge = compiled(config.train.compile, self.G_train, self.D_train,
                                                                self.D)
        fused = self.device.type in ("cuda", "cpu")
        self.opt_g = torch.optim.Adam(trained.parameters(), fused=fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), fused=fused)
        self.aug = Augmenter(self.device, config.train.seed, config.data.flip, config.data.rotate_degrees,
                             config.data.diffaugment, self.dist.rank, self.dist.world_size, config.data.augment_p)
        self.schedule = Schedule(config, self.opt_g, self.opt_d, self.loss, self.ema, self.aug)
        self.schedule.apply(self.images)
        self.noise = BatchRandom(self.device, config.train.seed * 7 + 1, self.dist.rank, self.dist.world_size)
        parts = StepParts(self.G_train, self.D_train, self.D_judge, self.D, self.opt_g, self.opt_d, self.loss,
                          self.aug.diff, self.autocast, self.loss.probability_logits, pair.objective)
        self.step_fn = STEPS[self.capabilities.step](parts, config.optim.n_critic, self.capabilities.aux_loss)
        fixed = torch.Generator().manual_seed(config.train.seed + 1)
        self.fixed_z = torch.randn(config.train.grid_size, self.latent_dim, generator=fixed).to(self.device)
        self.best: dict[str, Any] = {}
        self._time_up = False  # under torchrun: all ranks agreed the time limit is reached
        if checkpoint:
            self._resume(*checkpoint)
        elif config.train.init_from:
            self._initialise_from(config.train.init_from)
        self._set_progress()
        if self.dist.is_main:
            self.run.path.mkdir(parents=True, exist_ok=True)
            self.run.write_config(config)
        self.doctor = self._start_doctor()

    # ----------------------------------------------------------------- state

    def _start_doctor(self) -> Doctor | None:
        """The training doctor (rank 0, doctor.enabled), caught up with the run's records so far (a resumed
        run's, cut back to its checkpoint), which rewrites findings.json."""
        if not (self.config.doctor.enabled and self.dist.is_main):
            return None
        doctor = Doctor(self.config, self.capabilities.step, self.run.findings_path, self.real_images)
        doctor.replay(self.run.metrics())
        return doctor

    def _append(self, record: dict[str, Any]) -> None:
        """Append a record to metrics.jsonl (rank 0) and show it to the doctor."""
        if not self.dist.is_main:
            return
        self.run.append_metrics(record)
        if self.doctor is not None:
            self.doctor.observe(record)

    def _failed_start(self, exc: BaseException) -> None:
        """Give the lock back; mark the run failed only where this launch already said it was starting
        (its own status, or the one ``start_training`` wrote for it), so a refused resume leaves a
        finished run as it was."""
        if self.lock is not None:
            self.lock.release()
        if not self.dist.is_main:
            return
        status = self.run.status()
        ours = self._wrote_status or (status.get("state") in ("starting", "running")
                                      and status.get("started_at") == self._launched_at)
        if ours:
            self.run.write_status(**dict(status, state="failed", error=describe_error(exc), pid=os.getpid()))

    def release(self) -> None:
        """Give up the run directory's lock (training again takes it back)."""
        if self.lock is not None:
            self.lock.release()

    def _clear_stale_stop(self) -> None:
        """Remove a STOP file older than this worker's launch (left by an earlier session); a request
        made after the launch stays and ends the run."""
        if not self.dist.is_main:
            return
        try:
            if self.run.stop_path.stat().st_mtime < self._launched_at:
                self.run.stop_path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass

    def _stop_file(self) -> bool:
        """A stop request seen during start-up (one process; torchrun ranks agree on it in the loop)."""
        return not self.dist.active and self.run.stop_requested()

    def wall_seconds(self) -> float:
        """Seconds since the run was first started: earlier sessions plus this one since its launch."""
        return self.wall_base + max(0.0, time.time() - self._launched_at)

    def _modules(self) -> dict[str, torch.nn.Module]:
        modules = {"G": self.G, "D": self.D, "G_ema": self.ema.ema}
        return modules if self.E is None else dict(modules, E=self.E)

    def _initialise_from(self, source: str) -> None:
        """Start from another run's or an exported generator's weights (fine-tuning / transfer)."""
        weights = initial_weights(source, self.config.model.name, self.config.data.resolution)
        if "G" not in weights:
            weights["G"] = weights["G_ema"]
        weights.setdefault("G_ema", weights["G"])
        for prefix, module in self._modules().items():
            if prefix in weights:
                try:
                    module.load_state_dict(weights[prefix])
                except RuntimeError as exc:
                    raise ConfigError(f"train.init_from {source}: its {prefix} weights do not fit this model "
                                      f"({str(exc).splitlines()[0]}); use the same model options and resolution"
                                      ) from None

    def _set_progress(self) -> None:
        """Let a growing model (``Capabilities.grows``: the progressive GAN) follow the images seen."""
        if self.capabilities.grows:
            for module in (self.G, self.D, self.ema.ema):
                cast(Growing, module).set_progress(self.images)

    def _state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {"rng.cpu": torch.get_rng_state(), "rng.noise": self.noise.gen.get_state(),
                   "rng.aug": self.aug.get_state()}
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        return tensors

    def save(self) -> Path | None:
        """Write a checkpoint (rank 0 only) and prune to keep-last-K. Every process first checks the
        state is finite (Divergence otherwise): a non-finite checkpoint is never written, so pruning
        never removes the last finite one."""
        self._check_finite_state()
        if not self.dist.is_main:
            return None
        path = self.run.checkpoints_dir / f"ckpt_{self.step:08d}.json"
        self._write_checkpoint(path)
        for old in self.run.checkpoints()[:-max(1, self.config.train.keep_checkpoints)]:
            old.unlink(missing_ok=True)  # the commit mark first: a kill here leaves tensors clean_leftovers removes
            old.with_suffix(".safetensors").unlink(missing_ok=True)
        return path

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_G": self.opt_g, "opt_D": self.opt_d}

    def _check_finite_state(self, all_ranks: bool = True) -> None:
        """Divergence when any tensor of the training state is NaN or infinite (one host sync); with
        ``all_ranks`` every torchrun process takes part and all agree."""
        bad = nonfinite_tensors(state_tensors(self._modules(), self._optimizers()))
        if distributed.any_flags((bool(bad),), self.dist)[0] if all_ranks else bad:
            raise Divergence(self.step, describe_tensors(bad) if bad else "another process's state is not finite")

    def _write_checkpoint(self, path: Path, tensors_name: str | None = None) -> None:
        save_checkpoint(path, self._modules(), self._optimizers(), self._state_tensors(), self._meta(), tensors_name)

    def _meta(self) -> dict[str, Any]:
        meta = {"step": self.step, "images": self.images, "train_seconds": self.train_seconds,
                "wall_seconds": self.wall_seconds(), "data": self.data.state_dict(),
                "model": self.config.model.name, "model_options": self.config.model.options,
                "resolution": self.config.data.resolution, "latent_dim": self.latent_dim,
                "num_classes": self.num_classes, "best": self.best, "world_size": self.dist.world_size,
                "dataset": self.dataset_info, "live": self.live_schedule.state_dict(), "seed": self.config.train.seed,
                "rollbacks": self.rollbacks, "model_kind": self.capabilities.step}
        if self._layout_decided:
            meta["memory_format"] = {"device": self.device.type, "channels_last": self.channels_last}
        return meta

    def _memory_layout(self, pair: GanPair, meta: dict[str, Any]) -> tuple[bool, bool]:
        """channels_last or not (train.memory_format), and whether that is the run's decision to keep.
        A resumed run keeps the layout it was trained in on the same kind of device, so its continuation
        computes exactly as an uninterrupted run. A stop requested by now skips the timing: the run
        stops before its first step, and its resumption decides. torch.compile on CUDA trains
        contiguous (see compiled_layout)."""
        recorded = meta.get("memory_format", {})
        setting = self.config.train.memory_format
        if self.config.train.compile != "off" and self.device.type == "cuda":
            return compiled_layout(setting), True
        if setting == "auto" and recorded.get("device") == self.device.type:
            return recorded["channels_last"], True
        measure = not (self.dist.active or self.config.train.deterministic)
        undecided = setting == "auto" and measure and self._stop_file()
        try:
            return wants_channels_last(setting, self.device, pair.generator, pair.discriminator, self.local_batch,
                                       pair.latent_dim, judges_images=pair.encoder is None,
                                       measure=measure and not undecided), not undecided
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def _resume(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Continue from a checkpoint: its state, the config's optimiser settings and scheduled values at
        its images count, and a history cut back to its step (what came after is trained again)."""
        for prefix, module in self._modules().items():
            try:
                module.load_state_dict(split_prefix(prefix, tensors))
            except RuntimeError as exc:
                raise CheckpointError(f"the checkpoint's {prefix} weights do not fit this model "
                                      f"({str(exc).splitlines()[0]}); resume with the run's own settings") from None
        restore_optimizer(self.opt_g, "opt_G", meta, tensors)
        restore_optimizer(self.opt_d, "opt_D", meta, tensors)
        torch.set_rng_state(tensors["rng.cpu"])
        self.noise.gen.set_state(tensors["rng.noise"])  # global-batch streams: valid for any process count
        self.aug.set_state(tensors["rng.aug"])
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.data.load_state_dict(meta["data"])
        self.best = meta.get("best", {})
        if "live" in meta:
            self.live_schedule.load_state_dict(meta["live"])
        self.step, self.images = meta["step"], meta["images"]
        self.schedule.apply(self.images)  # over the checkpoint's optimiser settings
        if self.dist.is_main:
            self.run.truncate_history(self.step)

    def _latest_valid_checkpoint(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """The newest checkpoint that verifies; damaged newer ones are reported and passed over."""
        problems = []
        for path in reversed(self.run.checkpoints()):
            try:
                return load_checkpoint(path)
            except CheckpointError as exc:
                log.warning("skipping damaged checkpoint: %s", exc)
                problems.append(str(exc))
        detail = f" ({'; '.join(problems)})" if problems else ""
        raise CheckpointError(f"run {self.run.path} has no usable checkpoint to resume from{detail}; "
                              "start a new run instead of --resume")

    # ----------------------------------------------------------------- steps

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def draw(self, update: int) -> Batch:
        """This rank's share of the next global batch (augmented, with its labels), its latents, and the
        interpolation weights when the loss takes a penalty on interpolates; the global draws are the
        same for any process count. ``update`` counts D updates since the run began: the lazy input
        penalty (loss.penalty_every) falls on its multiples."""
        real, labels = self.data.take(self.config.train.batch_size, self.channels_last)
        real = self.aug.real(real)
        z = self.noise.normal((self.local_batch, self.latent_dim))
        mix = self.noise.uniform((self.local_batch, 1, 1, 1)) if self.loss.uses_interpolates else None
        return Batch(real, labels, z, mix, update % self.config.loss.penalty_every == 0)

    def train_step(self) -> torch.Tensor:
        """One step of the model's kind, with the scheduled values at the images seen so far; its statistics
        (``step_fn.names``) stay on the device."""
        self._set_progress()
        if self.schedule.active:
            self.schedule.apply(self.images)
        n = self.step_fn.batches
        stats = self.step_fn([self.draw(self.step * n + i) for i in range(n)])
        self.images += self.config.train.batch_size
        self.ema.update(self.G, self.config.train.batch_size, self.images)
        self.step += 1
        return stats

    # ----------------------------------------------------------------- outputs

    @torch.no_grad()
    def write_grid(self) -> None:
        if not self.dist.is_main:
            return
        labels = torch.arange(len(self.fixed_z), device=self.device) % max(1, self.num_classes)
        with self.autocast():
            images = to_uint8(self.ema.ema(self.fixed_z, labels))
        grid = image_grid(images, columns=int(math.sqrt(len(images))) or 1)
        atomic_write(self.run.grids_dir / f"step_{self.step:08d}.png", lambda tmp: save_png(grid, str(tmp)))
        if self.doctor is not None:  # the grid's images are on the host already
            self._append(records.ProbeRecord(self.step, self.images, round(self.train_seconds, 3),
                                             self.doctor.probe(images, self._fresh_samples(len(images)))).to_dict())

    def _fresh_samples(self, count: int) -> np.ndarray:
        """``count`` EMA samples from latents (and labels) drawn afresh for this step, from their own seeded
        generator: the training's random streams are untouched, so a resume stays exact."""
        draws = torch.Generator().manual_seed(self.config.train.seed * 1_000_003 + self.step)
        z = torch.randn(count, self.latent_dim, generator=draws)
        return self._ema_samples(z, torch.randint(max(1, self.num_classes), (count,), generator=draws))

    def _evaluation_due(self) -> bool:
        every = self.config.metrics.every_images
        return every > 0 and self.images // every > (self.images - self.config.train.batch_size) // every

    def evaluate(self) -> dict[str, Any]:
        """Run the configured metrics on the EMA generator, log them and keep the best checkpoint."""
        cfg = self.config.metrics
        values: dict[str, float] = {}
        errors: dict[str, str] = {}
        if self.dist.is_main:
            try:
                results = metrics.evaluate(cfg.names, self._sample_fn, self.real_images, cfg.num_samples,
                                           dataset_key=self.dataset_info["fingerprint"], device=self.device,
                                           inception_weights=cfg.inception_weights)
                values, errors = dict(results), dict(results.errors)
            except metrics.MetricUnavailable as exc:
                log.warning("evaluation skipped: %s", exc)
                errors = {name: str(exc) for name in cfg.names}
        record = records.EvalRecord(self.step, self.images, round(self.train_seconds, 3), values,
                                    errors=errors).to_dict()
        if not self.dist.is_main:
            return record
        self._append(record)
        wanted = self.config.metrics.best_metric
        key = next((k for k, v in record.items() if isinstance(v, float) and metrics.output_of(k) == wanted), None)
        if key is not None:
            self._track_best(record, key)
        return record

    def _live_due(self, log_step: bool) -> bool:
        """Whether a live metric is due now; which ones is kept in ``live_due`` for live_evaluate."""
        self.live_due = set()
        if not self.dist.is_main:
            return False
        if self.config.metrics.live_samples and self.live_schedule.swd.due(self.train_seconds, log_step):
            self.live_due.add("swd")
        if self.live_fid.due(self.train_seconds, self.images, self.config.train.batch_size):
            self.live_due.add("fid")
        return bool(self.live_due)

    def live_evaluate(self) -> dict[str, Any]:
        """The live metrics that are due, of the EMA generator, logged in one record: SWD, and FID-1k where the
        Inception network is here (engine.metrics.live.LiveFID). When no periodic evaluation is configured the
        best checkpoint follows the live FID once it has run, else the live SWD. Each metric's cost (with
        best.json, and its one-time preparation) sets when it is next due."""
        values: dict[str, float] = {}
        if "fid" in self.live_due:
            fid = self.live_fid(self._sample_fn, self.real_images, self.dataset_info["fingerprint"], self.train_seconds)
            if fid is not None:
                values[self.live_fid.key] = fid
            elif self.live_fid.unavailable:
                log.debug("no live FID: %s", self.live_fid.unavailable)
        begin = time.perf_counter()
        if "swd" in self.live_due:
            if self.live is None:
                self.live = LiveSWD(self.real_images, self.config.metrics.live_samples, self.device)
            start = time.perf_counter()
            values[self.live.key] = self.live(self._sample_fn)
        record = records.EvalRecord(self.step, self.images, round(self.train_seconds, 3), values, live=True).to_dict()
        if values:
            self._append(record)
            follows_fid = self.live_fid.key in values or self.best.get("key") == self.live_fid.key
            if not self.config.metrics.every_images:
                self._track_best(record, self.live_fid.key if follows_fid else next(iter(values)))
        if "swd" in self.live_due:
            self.live_schedule.swd.done(self.train_seconds, time.perf_counter() - start, setup=start - begin)
        return record

    @torch.no_grad()
    def _sample_fn(self, count: int, first: int) -> np.ndarray:
        z = torch.randn(count, self.latent_dim, generator=torch.Generator().manual_seed(10_000_019 + first))
        return self._ema_samples(z, torch.arange(first, first + count) % max(1, self.num_classes))

    def _ema_samples(self, z: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
        """The EMA generator's uint8 images of host latents and labels."""
        with self.autocast():
            return to_uint8(self.ema.ema(z.to(self.device), labels.to(self.device)))

    def _track_best(self, record: dict[str, Any], key: str) -> None:
        """Write best.json when ``record[key]`` beats the best so far of the same key (a best by
        another key, e.g. from before a config change, is not comparable and is replaced)."""
        value, lower = record.get(key), metrics.lower_is_better(key)
        if not isinstance(value, float) or not math.isfinite(value):
            return
        previous = self.best.get("value") if self.best.get("key") == key else None
        if previous is None or (value < previous if lower else value > previous):
            self.best = {"key": key, "value": value, "step": self.step, "images": self.images}
            self._write_best()

    def _write_best(self) -> None:
        """best.json with tensors named by step: the old pair stays whole until the new JSON commits,
        then the old tensors go."""
        self._check_finite_state(all_ranks=False)  # main process only, like the evaluations
        name = f"best_{self.step:08d}.safetensors"
        self._write_checkpoint(self.run.checkpoints_dir / "best.json", tensors_name=name)
        for old in self.run.checkpoints_dir.glob("best_*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def _limits(self) -> dict[str, float]:
        t = self.config.train
        return {k: v for k, v in (("steps", t.max_steps), ("images", t.max_images), ("seconds", t.max_seconds)) if v}

    def progress(self) -> float | None:
        done = {"steps": self.step, "images": self.images, "seconds": self.train_seconds}
        limits = self._limits()
        return min(1.0, max(done[k] / v for k, v in limits.items())) if limits else None

    def finished(self) -> bool:
        """A limit is reached. Under torchrun the time limit counts once all ranks agreed on it."""
        t = self.config.train
        if (t.max_steps and self.step >= t.max_steps) or (t.max_images and self.images >= t.max_images):
            return True
        if not t.max_seconds:
            return False
        return self._time_up if self.dist.active else self.train_seconds >= t.max_seconds

    def _stop_requested(self, stop: StopFlag) -> bool:
        """Stop request or (torchrun) time limit, agreed by all ranks; checked every step in one process
        and every STOP_CHECK_STEPS steps under torchrun (a collective is a host sync)."""
        if self.dist.active and self.step % STOP_CHECK_STEPS:
            return False
        requested = stop.requested or (self.dist.is_main and self.run.stop_requested())
        max_seconds = self.config.train.max_seconds
        out_of_time = bool(max_seconds) and self.train_seconds >= max_seconds
        requested, out_of_time = distributed.any_flags((requested, out_of_time), self.dist)
        self._time_up = out_of_time
        return requested

    def _log(self, acc: torch.Tensor, steps: int, img_per_sec: float, on_log: ProgressFn | None) -> None:
        """Append the averages of the last ``steps`` steps to metrics.jsonl and rewrite the status;
        Divergence when any of them is not finite (the averages are read here anyway: no extra sync)."""
        values = (distributed.mean_over_ranks(acc, self.dist) / steps).tolist()
        stats = dict(zip(self.step_fn.names, values), **{
            records.IMG_PER_SEC: img_per_sec, records.LR_G: self.opt_g.param_groups[0]["lr"],
            records.LR_D: self.opt_d.param_groups[0]["lr"]}, **self.schedule.logged())
        if self.capabilities.grows:
            stats.update(cast(ReportsGrowth, self.G).progress_info())
        record = records.TrainRecord(self.step, self.images, round(self.train_seconds, 3),
                                     round(self.wall_seconds(), 3), stats).to_dict()
        self._append(record)
        bad = nonfinite_stats(self.step_fn.names, values)
        if bad:
            raise Divergence(self.step, describe_stats(bad, steps, self.step))
        self._status("running", img_per_sec)
        if on_log:
            on_log(record)

    def _status(self, state: str, img_per_sec: float = 0.0, error: str | None = None, phase: str | None = None
                ) -> None:
        """Rewrite status.json (rank 0); ``phase`` says what a starting run is doing."""
        if not self.dist.is_main:
            return
        self._wrote_status = True
        extra = {"phase": phase} if phase else {}
        self.run.write_status(state=state, pid=os.getpid(), heartbeat=time.time(), step=self.step,
                              images=self.images, progress=self.progress(), img_per_sec=img_per_sec,
                              eta_seconds=self.eta(img_per_sec) if state == "running" else None, error=error,
                              device=str(self.device), train_seconds=self.train_seconds,
                              started_at=self._launched_at, model_kind=self.capabilities.step, **extra)

    def eta(self, img_per_sec: float) -> float | None:
        """Seconds until the first limit is reached at ``img_per_sec``; None without a limit."""
        t = self.config.train
        left = [max(0.0, t.max_seconds - self.train_seconds)] if t.max_seconds else []
        if img_per_sec > 0:
            if t.max_steps:
                left.append(max(0, t.max_steps - self.step) * t.batch_size / img_per_sec)
            if t.max_images:
                left.append(max(0, t.max_images - self.images) / img_per_sec)
        return min(left) if left else None

    # ----------------------------------------------------------------- loop

    def train(self, stop: StopFlag | None = None, on_log: ProgressFn | None = None) -> str:
        """Train until a limit or a stop request; returns the final state (finished or stopped).

        The status is rewritten after the first step, at each log step and at least every
        STATUS_EVERY seconds between them (host-side counters only). A divergence stops the run as
        failed (DivergenceError), or with ``train.on_divergence=rollback`` goes back to the last
        finite checkpoint with lower learning rates and carries on."""
        stop = stop or StopFlag()
        if self.dist.is_main and not (self.lock and self.lock.held):
            self.lock = RunLock.acquire(self.run.path)
        if self.lock:
            self.lock.busy = True
        speed = SpeedMeter()
        try:
            if not self.run.grids() and not self._stop_file():
                self._status("starting", phase="writing the first grid")
                self.write_grid()
            self._status("starting", phase="first training step")
            base_seconds = self.train_seconds
            while True:
                try:
                    state = self._train_session(stop, on_log, speed, base_seconds)
                    break
                except Divergence as exc:
                    self._recover(exc)
        except BaseException as exc:
            self._status("failed", speed.current(), error=describe_error(exc))
            raise
        finally:
            self.release()
        self._status(state, speed.current())
        self._record_speed(speed.windows)
        distributed.finished()
        return state

    def _train_session(self, stop: StopFlag, on_log: ProgressFn | None, speed: "SpeedMeter",
                       base_seconds: float) -> str:
        """The steps until a limit or a stop request, then the last log line, grid and checkpoint."""
        cfg = self.config.train
        acc = torch.zeros(len(self.step_fn.names), device=self.device)
        acc_steps, last_status = 0, -math.inf
        state = "finished"
        while True:
            if self._stop_requested(stop):
                state = "stopped"
                break
            if self.finished():
                break
            acc += self.train_step()
            acc_steps += 1
            speed.add(cfg.batch_size)
            self.train_seconds = base_seconds + speed.session_seconds()
            log_step = self.step % cfg.log_every == 0 or self.finished()
            if log_step:
                self._log(acc, acc_steps, speed.close_window(), on_log)
                acc.zero_()
                acc_steps, last_status = 0, time.perf_counter()
            elif time.perf_counter() - last_status >= STATUS_EVERY:
                self._status("running", speed.current())
                last_status = time.perf_counter()
            if self.step % cfg.grid_every == 0:
                self.write_grid()
            if self._evaluation_due():
                self.evaluate()
            if self._live_due(log_step):
                self.live_evaluate()
            if self.step % cfg.checkpoint_every == 0:
                self.save()
        if acc_steps:
            self._log(acc, acc_steps, speed.close_window(), on_log)
        if self.run.grids() and self.run.grids()[-1][0] != self.step:
            self.write_grid()
        self.save()
        return state

    def _recover(self, exc: Divergence) -> None:
        """Roll back to the last finite checkpoint with lower learning rates (train.on_divergence=rollback,
        at most train.max_rollbacks times), else log the divergence and raise DivergenceError."""
        cfg = self.config.train
        last_step = self.run.latest_checkpoint_step()
        exhausted = self.rollbacks >= cfg.max_rollbacks
        if cfg.on_divergence != "rollback" or exhausted or last_step is None:
            self._event(records.DIVERGENCE, diverged_at=exc.step, detail=exc.detail)
            tried = f" after {self.rollbacks} rollback(s) (train.max_rollbacks)" if exhausted and self.rollbacks else ""
            optim = self.config.optim
            raise DivergenceError(f"training diverged at step {exc.step}{tried}: {exc.detail}. "
                                  + advice(optim.lr_g, optim.lr_d, self.bf16, last_step,
                                           cfg.on_divergence == "rollback" and exhausted)) from None
        self.rollbacks += 1
        halve_learning_rate_curves(self.config)
        if self.dist.is_main:
            self.run.write_config(self.config)
        self._resume(*self._latest_valid_checkpoint())
        self._set_progress()
        self.doctor = self._start_doctor()  # its history was cut back with the run's
        log.warning("diverged at step %d (%s): rolled back to step %d with lr_g=%g, lr_d=%g", exc.step,
                    exc.detail, self.step, self.config.optim.lr_g, self.config.optim.lr_d)
        self._event(records.ROLLBACK, diverged_at=exc.step, detail=exc.detail, lr_g=self.config.optim.lr_g,
                    lr_d=self.config.optim.lr_d, rollbacks=self.rollbacks)

    def _event(self, event: str, **fields: Any) -> None:
        """Append an event record (divergence, rollback) at the current step."""
        self._append(records.EventRecord(event, self.step, self.images, round(self.train_seconds, 3),
                                         **fields).to_dict())

    def _record_speed(self, windows: list[float]) -> None:
        """Remember this session's median img/s for its shape on this machine (what the studio expects
        before Start). Single-process runs only: a torchrun speed is not one device's."""
        if self.dist.active or not windows:
            return
        try:
            record_speed(self.config, self.device, statistics.median(windows), self.run.name)
        except OSError as exc:
            log.warning("could not record the measured speed: %s", exc)


class SpeedMeter:
    """Images per second of one training session: per log window, and since the session began."""

    def __init__(self) -> None:
        self.start = self.window_start = time.perf_counter()
        self.images = self.window_images = 0
        self.windows: list[float] = []

    def add(self, images: int) -> None:
        self.images += images
        self.window_images += images

    def session_seconds(self) -> float:
        return time.perf_counter() - self.start

    def close_window(self) -> float:
        """The img/s of the window that ends now; a new window begins."""
        now = time.perf_counter()
        self.windows.append(self.window_images / max(now - self.window_start, 1e-9))
        self.window_start, self.window_images = now, 0
        return self.windows[-1]

    def current(self) -> float:
        """The latest window's img/s, or the session's so far before its first window closed."""
        if self.windows:
            return self.windows[-1]
        return self.images / max(self.session_seconds(), 1e-9)


STOP_CHECK_STEPS = 10  # under torchrun: how often ranks agree on stop requests and the time limit


def compiled_layout(setting: str) -> bool:
    """The layout under torch.compile on CUDA: contiguous. Inductor's convolution backward fails there on
    channels_last weights (PyTorch 2.11 on an H200, DCGAN-64: "expected … stride 16==1" in
    convolution_backward), so an explicit channels_last is refused; eager channels_last trained faster
    than compiled contiguous on that machine anyway (docs/benchmarks.md)."""
    if setting == "channels_last":
        raise ConfigError("train.compile needs train.memory_format=contiguous or auto on CUDA (torch.compile fails "
                          "on channels_last convolution gradients); or set train.compile=off: eager channels_last "
                          "is faster here")
    return False


def compiled(mode: str, *modules: torch.nn.Module) -> tuple[torch.nn.Module, ...]:
    """torch.compile each module; a module that cannot be compiled here runs eagerly instead."""
    torch._dynamo.config.suppress_errors = True  # fall back to eager per frame when compilation fails
    return tuple(cast(torch.nn.Module, torch.compile(module, mode=mode)) for module in modules)


def check_metrics(cfg: MetricsConfig) -> None:
    """ConfigError, at start, for periodic metrics or a best metric the engine does not know."""
    for name in cfg.names:
        try:
            metrics.get_metric(name)
        except ValueError as exc:
            raise ConfigError(f"metrics.names: {exc}") from None
    try:
        metrics.lower_is_better(cfg.best_metric)
    except ValueError as exc:
        raise ConfigError(f"metrics.best_metric: {exc}; use e.g. swd, fid, kid, is, precision") from None


def describe_error(exc: BaseException) -> str:
    """A plain-words description of why training failed."""
    if isinstance(exc, torch.OutOfMemoryError):
        return f"out of memory on the device: {OUT_OF_MEMORY_ADVICE}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, (ConfigError, CheckpointError, DivergenceError, ValueError, FileNotFoundError)):
        return text
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" (in {Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"{type(exc).__name__}: {text}{where}"
