"""The training loop: SGD with a per-iteration LR schedule, AMP, clipping, accumulation,
DDP, non-finite detection agreed across ranks, periodic validation, and checkpoints
that let an interrupted run resume to bitwise-identical weights (on CPU).

What makes resume exact:
  * the sampler's order and every sample's augmentation seed are functions of
    (RNG_SEED, epoch, position), and a resumed epoch skips exactly the consumed samples;
  * data loaders own their generators, so creating one never draws from the global RNG;
  * the LR is a pure function of (epoch + iter / iters_per_epoch);
  * model, optimizer, scaler, epoch meters, history and every rank's RNG states are saved.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..data.transforms import to_model_input
from ..models.pretrained import save_pretrained
from ..utils.rng import get_rng_state, mix_seed, seed_all, set_rng_state, worker_init_fn
from . import checkpoint as ck
from . import distributed as du
from . import faults
from .evaluator import evaluate, run_test
from .metrics import format_metrics
from .precision import (autocast, check_precision, cpu_bf16_note, cpu_bf16_workaround, make_scaler, memory_format,
                        training_kernels)
from .progress import MetricsLog, Progress, setup_logging
from .sampler import TrainSampler
from .schedule import lr_at, scaled_base_lr, set_lr
from .step import apply_update, backward, grad_is_nonfinite, unscale_and_clip

logger = logging.getLogger("vidrec")

# Per-step statistics, summed over micro-batches and then over ranks (one all_reduce per step).
_LOSS, _CORRECT, _COUNT, _FAILED, _BAD_LOSS, _BAD_GRAD = range(6)


class NonFiniteError(FloatingPointError):
    """Loss or gradient became NaN/Inf; raised on every rank at the same step."""


def _val_cfg(cfg):
    """Periodic validation uses TRAIN.VAL_* views (cheap); the final test uses TEST.*."""
    vcfg = cfg.clone()
    vcfg.defrost()
    vcfg.TEST.NUM_ENSEMBLE_VIEWS = cfg.TRAIN.VAL_ENSEMBLE_VIEWS
    vcfg.TEST.NUM_SPATIAL_CROPS = cfg.TRAIN.VAL_SPATIAL_CROPS
    vcfg.freeze()
    return vcfg


class Trainer:
    def __init__(self, cfg, ctx: du.DistContext):
        from ..data import build_dataset, collate_train
        from ..models import build_model
        from .run_info import write_run_info

        self.cfg, self.ctx = cfg, ctx
        self.out = cfg.OUTPUT_DIR
        self.ckpt_dir = os.path.join(self.out, "checkpoints")
        setup_logging(self.out, ctx.rank)
        self.precision = check_precision(cfg.TRAIN.MIXED_PRECISION)
        if cpu_bf16_workaround(self.precision, ctx.device):
            logger.info(cpu_bf16_note())
        self.accum = int(cfg.TRAIN.ACCUM_STEPS)
        if cfg.TRAIN.BATCH_SIZE % ctx.world_size:
            raise ValueError(f"TRAIN.BATCH_SIZE {cfg.TRAIN.BATCH_SIZE} (global) must be divisible by the "
                             f"number of processes ({ctx.world_size})")
        self.batch = cfg.TRAIN.BATCH_SIZE // ctx.world_size  # per rank, per micro-step

        seed_all(cfg.RNG_SEED)  # same model init on every rank
        self.train_set = build_dataset(cfg, "train")
        self.val_set = None
        if cfg.TRAIN.EVAL_PERIOD > 0:
            if cfg.DATA.VAL_LIST or cfg.DATA.DATASET == "folder":
                self.val_set = build_dataset(_val_cfg(cfg), "val")
            else:
                logger.info("no DATA.VAL_LIST: periodic validation is off (TRAIN.EVAL_PERIOD ignored)")
        model = build_model(cfg)
        if ctx.is_main:
            write_run_info(cfg, model, self.out, ctx.world_size)
        if cfg.TRAIN.CHECKPOINT_FILE:
            ck.load_weights(model, cfg.TRAIN.CHECKPOINT_FILE, strict=False)  # e.g. a new classifier
            logger.info("initialised from %s", cfg.TRAIN.CHECKPOINT_FILE)
        self.memory_format = memory_format(cfg.MEMORY_FORMAT, ctx.device)
        model.to(ctx.device, memory_format=self.memory_format)
        if ctx.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # training clips have one fixed shape: tune once
        if cfg.MODEL.SYNC_BN and ctx.distributed:
            if ctx.device.type == "cuda":
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            else:
                logger.warning("MODEL.SYNC_BN ignored: PyTorch's SyncBatchNorm needs GPUs")
        self.net = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr_at(cfg, 0.0), momentum=cfg.SOLVER.MOMENTUM,
                                         weight_decay=cfg.SOLVER.WEIGHT_DECAY, nesterov=cfg.SOLVER.NESTEROV)
        self.scaler = make_scaler(self.precision, ctx.device)
        self.sampler = TrainSampler(len(self.train_set), cfg.TRAIN.BATCH_SIZE * self.accum, cfg.RNG_SEED,
                                    ctx.rank, ctx.world_size)
        self.ipe = self.sampler.iters_per_epoch
        self.loader_gen = torch.Generator()
        nw = cfg.DATA_LOADER.NUM_WORKERS
        self.loader = DataLoader(
            self.train_set, batch_size=self.batch, sampler=self.sampler, num_workers=nw, drop_last=True,
            collate_fn=collate_train,
            pin_memory=cfg.DATA_LOADER.PIN_MEMORY and ctx.device.type == "cuda", worker_init_fn=worker_init_fn,
            generator=self.loader_gen, persistent_workers=nw > 0 and cfg.DATA_LOADER.PERSISTENT_WORKERS)
        self.epoch, self.iter, self.global_step = 0, 0, 0
        self._metrics_lines: Optional[int] = None
        self.meters = self._zero_meters()
        self.history: list = []
        self.best_top1 = -1.0
        if not self._resume():
            seed_all(mix_seed(cfg.RNG_SEED, ctx.rank, 0x7EED))  # per-rank stream (dropout)
        if ctx.distributed:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        else:
            self.model = model
        self.mlog = MetricsLog(self.out, enabled=ctx.is_main)
        if self._metrics_lines is not None:  # resumed: drop the records of the steps about to be redone
            self.mlog.rewind(int(self._metrics_lines), self.global_step)
        logger.info("training %s: %d videos, %d iterations/epoch, global batch %d x %d accumulation, "
                    "%d process(es) on %s, %s, base LR %.4g (scaled to the batch)", cfg.MODEL.ARCH, len(self.train_set),
                    self.ipe, cfg.TRAIN.BATCH_SIZE, self.accum, ctx.world_size, ctx.device, self.precision,
                    scaled_base_lr(cfg))

    # ------------------------------------------------------------------ state
    @staticmethod
    def _zero_meters() -> Dict[str, float]:
        return {"loss": 0.0, "correct": 0.0, "count": 0.0, "failed": 0.0, "time": 0.0, "data_time": 0.0}

    def _state(self) -> Dict:
        rng = du.all_gather_object(get_rng_state())  # every rank's streams
        return {
            "format": ck.FORMAT_VERSION, "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "epoch": self.epoch, "iter": self.iter, "global_step": self.global_step,
            "iters_per_epoch": self.ipe, "world_size": self.ctx.world_size, "sampler": self.sampler.state_dict(),
            "rng": rng, "meters": dict(self.meters), "history": list(self.history),
            "best_top1": float(self.best_top1), "cfg": self.cfg.dump(), "metrics_lines": self.mlog.lines,
        }

    def save(self, best: bool = False) -> None:
        state = self._state()  # collective: all ranks
        if self.ctx.is_main:
            path = os.path.join(self.ckpt_dir, ck.checkpoint_name(self.epoch, self.iter))
            ck.save_checkpoint(state, path)
            if best:
                ck.save_checkpoint(state, os.path.join(self.ckpt_dir, ck.BEST_NAME))
            ck.prune(self.ckpt_dir, self.cfg.TRAIN.KEEP_LAST)
            logger.info("checkpoint %s%s", path, " (best)" if best else "")
        du.barrier()

    def _resume(self) -> bool:
        if not self.cfg.TRAIN.AUTO_RESUME:
            return False
        if self.ctx.is_main:
            ck.remove_stale_temp_files(self.ckpt_dir)
        found = ck.latest_loadable(self.ckpt_dir)
        if found is None:
            return False
        path, s = found
        if s.get("iter", 0) and s.get("iters_per_epoch") != self.ipe:
            raise ck.CheckpointError(
                f"{path} was written mid-epoch with {s.get('iters_per_epoch')} iterations/epoch, but this run has "
                f"{self.ipe} (batch size or data changed); resume from an epoch-end checkpoint or a new OUTPUT_DIR")
        self.net.load_state_dict(s["model"])
        self.optimizer.load_state_dict(s["optimizer"])
        if self.scaler is not None and s.get("scaler"):
            self.scaler.load_state_dict(s["scaler"])
        self.epoch, self.iter, self.global_step = int(s["epoch"]), int(s["iter"]), int(s["global_step"])
        self.meters = {k: float(v) for k, v in s["meters"].items()}
        self.history = list(s["history"])
        self.best_top1 = float(s["best_top1"])
        self._metrics_lines = s.get("metrics_lines")  # records the checkpoint saw (older checkpoints: None)
        rng = s["rng"]
        if len(rng) == self.ctx.world_size:
            set_rng_state(rng[self.ctx.rank])
        else:
            logger.warning("checkpoint has RNG states for %d process(es), this run has %d: RNG streams re-seeded "
                           "(data order and augmentation are unaffected; dropout is)", len(rng), self.ctx.world_size)
            seed_all(mix_seed(self.cfg.RNG_SEED, self.ctx.rank, self.global_step))
        logger.info("resumed from %s (epoch %d, iteration %d/%d)", path, self.epoch, self.iter, self.ipe)
        return True

    # ------------------------------------------------------------------ loop
    def fit(self) -> Dict:
        cfg = self.cfg
        val_metrics: Optional[Dict] = None
        while self.epoch < cfg.SOLVER.MAX_EPOCH:
            self.train_epoch()
            done = self.epoch + 1
            is_best = val_ran = False
            if self.val_set is not None and (done % cfg.TRAIN.EVAL_PERIOD == 0 or done == cfg.SOLVER.MAX_EPOCH):
                res = evaluate(self.model, self.val_set, cfg, self.ctx, desc=f"val {done}")
                val_metrics, val_ran = res["metrics"], True
                rec = {"type": "val", "epoch": done, **{k: v for k, v in val_metrics.items()}}
                self.history.append(rec)
                self.mlog.log(rec, step=self.global_step)
                logger.info("val epoch %d: %s", done, format_metrics(val_metrics))
                is_best = val_metrics["top1"] > self.best_top1
                self.best_top1 = max(self.best_top1, val_metrics["top1"])
            self.epoch, self.iter = done, 0
            self.meters = self._zero_meters()
            if done % cfg.TRAIN.CHECKPOINT_PERIOD == 0 or done == cfg.SOLVER.MAX_EPOCH or is_best:
                self.save(best=is_best)
            if self.ctx.is_main and (val_ran or done == cfg.SOLVER.MAX_EPOCH):
                self._plot()
        result = {"history": self.history, "val": val_metrics, "test": None, "output_dir": self.out}
        if self.ctx.is_main:
            final = ck.export_safetensors(self.net, os.path.join(self.out, "model_final.safetensors"))
            logger.info("final weights: %s", final)
        best = os.path.join(self.ckpt_dir, ck.BEST_NAME)
        which = "final"
        if cfg.TEST.WEIGHTS == "best" and os.path.isfile(best):
            s = ck.safe_load(best)
            self.net.load_state_dict(s["model"])
            which = f"best-validation (epoch {s['epoch']})"
            logger.info("using the best-validation weights (epoch %d) for the model folder and the test: %s",
                        s["epoch"], best)
        if self.ctx.is_main:
            model_dir = save_pretrained(self.net, cfg, os.path.join(self.out, "model"),
                                        getattr(self.train_set, "class_names", None))
            logger.info("model folder (%s weights): %s; use it with: vidrec predict --model %s VIDEO",
                        which, model_dir, model_dir)
        du.barrier()
        if cfg.TEST.ENABLE:
            from ..data import build_dataset

            test_set = build_dataset(cfg, cfg.TEST.SPLIT)
            result["test"] = run_test(self.model, test_set, cfg, self.ctx)["metrics"]
            self.mlog.log({"type": "test", "split": cfg.TEST.SPLIT, **result["test"]}, step=self.global_step)
        self.mlog.close()
        return result

    def _plot(self) -> None:
        from .plots import plot_training_curves

        try:
            plot_training_curves(self.history, os.path.join(self.out, "training_curves.png"))
        except Exception as e:  # noqa: BLE001
            logger.warning("training-curve plot failed: %s", e)

    def train_epoch(self) -> None:
        from ..data import check_failure_rate

        cfg, ctx = self.cfg, self.ctx
        self.model.train()
        if cfg.TRAIN.FREEZE_BN:
            for m in self.model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        self.sampler.set_epoch(self.epoch)
        self.sampler.set_start(self.iter * self.accum * self.batch)
        self.loader_gen.manual_seed(mix_seed(cfg.RNG_SEED, self.epoch, ctx.rank, 0x10AD))
        data = iter(self.loader)
        progress = Progress(self.ipe, f"epoch {self.epoch + 1}/{cfg.SOLVER.MAX_EPOCH}", initial=self.iter,
                            log_period=cfg.LOG_PERIOD, enabled=ctx.is_main)
        t0 = time.time()
        while self.iter < self.ipe:
            lr = lr_at(cfg, self.epoch + self.iter / self.ipe)
            set_lr(self.optimizer, lr)
            stats = self.step(data)
            self.global_step += 1
            self.iter += 1
            m = self.meters
            m["loss"] += float(stats[_LOSS])
            m["correct"] += float(stats[_CORRECT])
            m["count"] += float(stats[_COUNT])
            m["failed"] += float(stats[_FAILED])
            faults.after_step(self.global_step)
            step_loss = float(stats[_LOSS] / stats[_COUNT])
            progress.update(int(stats[_COUNT]), loss=step_loss, lr=lr)
            if self.global_step % cfg.LOG_PERIOD == 0:
                self.mlog.log({"type": "train_iter", "epoch": self.epoch, "iter": self.iter, "step": self.global_step,
                               "loss": step_loss, "lr": lr}, step=self.global_step)
            if cfg.TRAIN.CHECKPOINT_ITERS > 0 and self.iter % cfg.TRAIN.CHECKPOINT_ITERS == 0 and self.iter < self.ipe:
                self.meters["time"] += time.time() - t0
                t0 = time.time()
                self.save()
        progress.close()
        m = self.meters
        m["time"] += time.time() - t0
        check_failure_rate(int(m["failed"]), int(m["count"]), cfg.DATA.MAX_FAIL_RATE)
        rec = {"type": "train_epoch", "epoch": self.epoch + 1, "loss": m["loss"] / max(m["count"], 1),
               "top1": 100.0 * m["correct"] / max(m["count"], 1), "lr": self.optimizer.param_groups[0]["lr"],
               "failed_videos": int(m["failed"]), "seconds": round(m["time"], 2),
               "data_wait_seconds": round(m.get("data_time", 0.0), 2)}
        self.history.append(rec)
        self.mlog.log(rec, step=self.global_step)
        logger.info("epoch %d: loss %.4f, train top-1 %.2f%%, %d failed videos skipped, %.1fs (%.1fs waiting "
                    "for data)", rec["epoch"], rec["loss"], rec["top1"], rec["failed_videos"], rec["seconds"],
                    rec["data_wait_seconds"])

    def step(self, data) -> torch.Tensor:
        """One optimizer step over ACCUM_STEPS micro-batches; returns the globally summed stats."""
        cfg, ctx = self.cfg, self.ctx
        self.optimizer.zero_grad(set_to_none=True)
        stats = torch.zeros(6, dtype=torch.float64)
        for micro in range(self.accum):
            t_wait = time.perf_counter()
            clips, labels, _, n_failed = next(data)
            self.meters["data_time"] = self.meters.get("data_time", 0.0) + time.perf_counter() - t_wait
            clips = to_model_input(clips, ctx.device, cfg.DATA.MEAN, cfg.DATA.STD, self.memory_format)
            labels = torch.as_tensor(labels).to(ctx.device, non_blocking=True)
            sync_ctx = (self.model.no_sync() if ctx.distributed and micro < self.accum - 1
                        else contextlib.nullcontext())
            with sync_ctx, training_kernels(self.precision, ctx.device):  # CPU bf16: oneDNN off (see precision.py)
                with autocast(self.precision, ctx.device):
                    logits = self.model(clips)
                loss = F.cross_entropy(logits.float(), labels)
                backward(loss, self.accum, self.scaler)  # loss / ACCUM_STEPS (x the fp16 scale)
            n = labels.shape[0]
            loss_v = float(loss.detach())
            stats[_LOSS] += loss_v * n
            stats[_CORRECT] += float((logits.detach().argmax(1) == labels).sum())
            stats[_COUNT] += n
            stats[_FAILED] += float(torch.as_tensor(n_failed).sum())
            stats[_BAD_LOSS] += 0.0 if math.isfinite(loss_v) else 1.0
        params = [p for p in self.net.parameters() if p.grad is not None]
        gnorm = unscale_and_clip(self.optimizer, params, cfg.TRAIN.CLIP_GRAD_NORM, self.scaler)
        if grad_is_nonfinite(gnorm, self.scaler):  # fp16: the GradScaler's business (it skips the step)
            stats[_BAD_GRAD] += 1.0
        du.all_reduce_sum(stats)  # every rank sees every rank's verdict: all stop together
        if stats[_BAD_LOSS] > 0 or stats[_BAD_GRAD] > 0:
            parts = []
            if stats[_BAD_LOSS] > 0:
                parts.append(f"loss (in {int(stats[_BAD_LOSS])} of {ctx.world_size * self.accum} micro-batches "
                             f"across {ctx.world_size} process(es))")
            if stats[_BAD_GRAD] > 0:
                parts.append("gradient")
            raise NonFiniteError(
                f"non-finite {' and '.join(parts)} at epoch {self.epoch + 1}, iteration {self.iter + 1}/{self.ipe} "
                f"(global step {self.global_step + 1}); training stopped on all ranks before applying this "
                f"update. Try a lower SOLVER.BASE_LR, warm-up (SOLVER.WARMUP_EPOCHS), TRAIN.CLIP_GRAD_NORM, or fp32; "
                f"the last checkpoint in {self.ckpt_dir} is intact.")
        apply_update(self.optimizer, self.scaler)
        return stats


def train(cfg) -> Dict:
    """Train (resuming when a checkpoint exists), validate periodically, then test. Returns a summary."""
    ctx = du.init_distributed(cfg)
    try:
        return Trainer(cfg, ctx).fit()
    finally:
        du.cleanup(ctx)
