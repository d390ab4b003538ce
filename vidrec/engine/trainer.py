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
import functools
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
from ..utils.cpus import loader_workers
from ..utils.io import remove_stale_temp_files
from ..utils.rng import get_rng_state, mix_seed, seed_all, set_rng_state, worker_init_fn
from . import checkpoint as ckpt
from . import distributed
from . import faults
from . import run_folder
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
# Where each statistic sits in the vector ``Trainer.step`` returns (for code that extends a step).
STEP_STATS = {"loss_sum": _LOSS, "correct": _CORRECT, "clips": _COUNT, "failed": _FAILED}


class NonFiniteError(FloatingPointError):
    """Loss or gradient became NaN/Inf; raised on every rank at the same step."""


# A checkpoint is "healthy" when the smoothed training loss (EMA, weight 0.2 per step) at its save was
# finite and at most this many times the chance-level loss ln(NUM_CLASSES): a network doing clearly
# worse than uniform guessing is diverging, not learning. The last healthy checkpoint is never
# pruned, and a NonFiniteError names it as the one to retry from.
HEALTHY_LOSS_FACTOR = 2.0
_LOSS_EMA = 0.2


def _close_on_error(init):
    """Trainer.__init__: a failed start releases the run folder's lock at once."""
    @functools.wraps(init)
    def run(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except BaseException:
            self.close()
            raise
    return run


def _close_after(fit):
    """Trainer.fit: the run folder's lock is released when training ends, however it ends."""
    @functools.wraps(fit)
    def run(self, *args, **kwargs):
        try:
            return fit(self, *args, **kwargs)
        finally:
            self.close()
    return run


def _val_cfg(cfg):
    """Periodic validation uses TRAIN.VAL_* views (cheap); the final test uses TEST.*."""
    vcfg = cfg.clone()
    vcfg.defrost()
    vcfg.TEST.NUM_ENSEMBLE_VIEWS = cfg.TRAIN.VAL_ENSEMBLE_VIEWS
    vcfg.TEST.NUM_SPATIAL_CROPS = cfg.TRAIN.VAL_SPATIAL_CROPS
    vcfg.freeze()
    return vcfg


class Trainer:
    @_close_on_error
    def __init__(self, cfg, ctx: distributed.DistContext):
        from ..data import build_dataset, collate_train
        from ..models import build_model
        from .run_info import prepare_run_info

        self.cfg, self.ctx = cfg, ctx
        self.out = cfg.OUTPUT_DIR
        self.ckpt_dir = os.path.join(self.out, "checkpoints")
        self._lock = run_folder.acquire_lock(self.out, ctx)  # one training per OUTPUT_DIR; before anything is written there
        if ctx.is_main:
            remove_stale_temp_files(self.out, recursive=True)  # killed writes' temp files; never a live one
        self.manifest = ckpt.Manifest(self.ckpt_dir)  # OUTPUT_DIR/checkpoints.json (written by rank 0 only)
        setup_logging(self.out, ctx.rank)
        self.precision = check_precision(cfg.TRAIN.MIXED_PRECISION)
        if cpu_bf16_workaround(self.precision, ctx.device):
            logger.info(cpu_bf16_note())
        self.accum = int(cfg.TRAIN.ACCUM_STEPS)
        self.clips_per_video = k = int(cfg.DATA.TRAIN_CLIPS_PER_VIDEO)
        if cfg.TRAIN.BATCH_SIZE % (ctx.world_size * k):
            per = f" x DATA.TRAIN_CLIPS_PER_VIDEO ({k})" if k > 1 else ""
            raise ValueError(f"TRAIN.BATCH_SIZE {cfg.TRAIN.BATCH_SIZE} (global, in clips) must be divisible by the "
                             f"number of processes ({ctx.world_size}){per}")
        self.batch = cfg.TRAIN.BATCH_SIZE // ctx.world_size // k  # videos per rank, per micro-step (k clips each)

        seed_all(cfg.RNG_SEED)  # same model init on every rank
        self.train_set = build_dataset(cfg, "train")
        self.val_set = None
        if cfg.TRAIN.EVAL_PERIOD > 0:
            if cfg.DATA.VAL_LIST or cfg.DATA.DATASET == "folder":
                self.val_set = build_dataset(_val_cfg(cfg), "val")
            else:
                logger.info("no DATA.VAL_LIST: periodic validation is off (TRAIN.EVAL_PERIOD ignored)")
        model = build_model(cfg)
        run_info = prepare_run_info(cfg, model, ctx.world_size) if ctx.is_main else None  # written after the checks
        if cfg.TRAIN.CHECKPOINT_FILE:
            ckpt.load_weights(model, cfg.TRAIN.CHECKPOINT_FILE, strict=False)  # e.g. a new classifier
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
        self.sampler = TrainSampler(len(self.train_set), cfg.TRAIN.BATCH_SIZE * self.accum // k, cfg.RNG_SEED,
                                    ctx.rank, ctx.world_size)
        self.iters_per_epoch = self.sampler.iters_per_epoch
        self.loader_gen = torch.Generator()
        nw, why = loader_workers(cfg.DATA_LOADER.NUM_WORKERS)
        logger.info("data loader: %d worker process(es) (%s)", nw, why)
        self.loader = DataLoader(
            self.train_set, batch_size=self.batch, sampler=self.sampler, num_workers=nw, drop_last=True,
            collate_fn=collate_train,
            pin_memory=cfg.DATA_LOADER.PIN_MEMORY and ctx.device.type == "cuda", worker_init_fn=worker_init_fn,
            generator=self.loader_gen, persistent_workers=nw > 0 and cfg.DATA_LOADER.PERSISTENT_WORKERS,
            prefetch_factor=cfg.DATA_LOADER.PREFETCH_FACTOR if nw > 0 else None)
        self.epoch, self.iter, self.global_step = 0, 0, 0
        self._metrics_lines: Optional[int] = None
        self.meters = self._zero_meters()
        self.history: list = []
        self.best_top1 = -1.0
        self.best_pos: Optional[Dict] = None  # position of the checkpoint best.pt holds (None: no validation yet)
        self._best_known = True  # False after resuming a checkpoint older than these records
        self.last_healthy: Optional[Dict] = None  # {"name", "global_step"} of the last healthy checkpoint
        self.loss_ema: Optional[float] = None
        self.branch: Optional[Dict] = None  # the TRAIN.RESUME_FROM checkpoint this run continues, if any
        found = self._find_resume()  # every check of OUTPUT_DIR; raises before anything there is overwritten
        if not self._resume(found):
            seed_all(mix_seed(cfg.RNG_SEED, ctx.rank, 0x7EED))  # per-rank stream (dropout)
        if run_info is not None:  # only now: a refused or failed resume leaves the saved run info as it was
            run_info.write(self.out)
        if ctx.distributed:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        else:
            self.model = model
        self.mlog = MetricsLog(self.out, enabled=ctx.is_main)
        if self._metrics_lines is not None:  # resumed: drop the records of the steps about to be redone
            self.mlog.rewind(int(self._metrics_lines), self.global_step)
        logger.info("training %s: %d videos (%d used per epoch), %d iterations/epoch, %d clips/step (global batch "
                    "%d x %d accumulation; %d clip(s) per video: %d videos/step), %d process(es) on %s, %s, base LR "
                    "%.4g (scaled to the batch)", cfg.MODEL.ARCH, len(self.train_set),
                    self.iters_per_epoch * self.sampler.global_batch, self.iters_per_epoch,
                    cfg.TRAIN.BATCH_SIZE * self.accum, cfg.TRAIN.BATCH_SIZE, self.accum, k, self.sampler.global_batch,
                    ctx.world_size, ctx.device, self.precision, scaled_base_lr(cfg))

    # ------------------------------------------------------------------ state
    @staticmethod
    def _zero_meters() -> Dict[str, float]:
        return {"loss": 0.0, "correct": 0.0, "count": 0.0, "failed": 0.0, "time": 0.0, "data_time": 0.0}

    def _state(self) -> Dict:
        rng = distributed.all_gather_object(get_rng_state())  # every rank's streams
        return {
            "format": ckpt.FORMAT_VERSION, "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "epoch": self.epoch, "iter": self.iter, "global_step": self.global_step,
            "iters_per_epoch": self.iters_per_epoch, "clips_per_video": self.clips_per_video,
            "world_size": self.ctx.world_size, "sampler": self.sampler.state_dict(),
            "rng": rng, "meters": dict(self.meters), "history": list(self.history),
            "best_top1": float(self.best_top1), "cfg": self.cfg.dump(), "metrics_lines": self.mlog.lines,
            "last_healthy": self.last_healthy, "loss_ema": self.loss_ema, "branch": self.branch,
            **({"best": self.best_pos} if self._best_known else {}),
        }

    def close(self) -> None:
        """Release OUTPUT_DIR's lock (fit does so when it ends)."""
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release()

    def _healthy_now(self) -> bool:
        limit = HEALTHY_LOSS_FACTOR * math.log(max(int(self.cfg.MODEL.NUM_CLASSES), 2))
        return self.loss_ema is None or (math.isfinite(self.loss_ema) and self.loss_ema <= limit)

    def save(self, best: bool = False) -> None:
        """Step checkpoint, listed in the manifest at once; then best.pt (the same bytes); then pruning."""
        name = ckpt.checkpoint_name(self.epoch, self.iter)
        healthy = self._healthy_now()
        if healthy:
            self.last_healthy = {"name": name, "global_step": self.global_step}
        if best:
            self.best_pos, self._best_known = {"epoch": self.epoch, "iter": self.iter,
                                               "global_step": self.global_step}, True
        state = self._state()  # collective: all ranks
        if self.ctx.is_main:
            m = self.manifest
            path = os.path.join(self.ckpt_dir, name)
            data = ckpt.save_checkpoint(state, path)
            faults.point("after_ckpt")
            m.add(name, data, state, healthy=healthy)
            m.save()  # the step checkpoint first: a kill before best.pt is written can re-create it
            if best:
                faults.point("before_best")
                ckpt.write_bytes(os.path.join(self.ckpt_dir, ckpt.BEST_NAME), data)
                m.files[ckpt.BEST_NAME] = dict(m.get(name), source=name)
            protect = [self.last_healthy["name"]] if self.last_healthy else []
            if ckpt.prune(self.ckpt_dir, self.cfg.TRAIN.KEEP_LAST, m, protect=protect) or best:
                m.save()
            logger.info("checkpoint %s%s%s", path, " (best)" if best else "",
                        "" if healthy else " (not healthy: smoothed loss %.4g)" % self.loss_ema)
        distributed.barrier()

    # ------------------------------------------------------------------ resume
    def _find_resume(self) -> Optional[str]:
        """Decide on rank 0 what this run starts from (a checkpoint path, or None: from scratch) and run
        every check; all ranks agree, and all raise the same error when a check fails."""
        path, error, exc = None, None, None
        if self.ctx.is_main:
            try:
                path = self._decide_resume()
            except Exception as e:  # noqa: BLE001 - re-raised below, after the other ranks are told
                error, exc = f"{e}", e
        if self.ctx.distributed:
            path, error = distributed.broadcast_object((path, error))
        if exc is not None:
            raise exc
        if error is not None:
            raise run_folder.RunFolderError(f"(rank 0) {error}")
        return path

    def _decide_resume(self) -> Optional[str]:
        cfg, m = self.cfg, self.manifest
        ckpt.remove_stale_temp_files(self.ckpt_dir)
        ckpt.remove_stale_temp_files(self.out)  # e.g. a killed write of checkpoints.json
        self._decided = None
        target = cfg.TRAIN.RESUME_FROM
        if not cfg.TRAIN.AUTO_RESUME and not target:
            run_folder.check_fresh_start(self.out, self.ckpt_dir)
            return None
        found = ckpt.find_resume(self.ckpt_dir, m, best=True, rename_corrupt=True)
        if found["corrupt"] and m.found:
            m.save()  # the renamed ones are no longer listed
        if target:
            found = self._resume_from(target, found)
        path, s = found["path"], found["state"]
        if path is None:
            left = run_folder.run_outputs(self.out, self.ckpt_dir)
            if left:
                raise ckpt.CheckpointError(
                    f"no usable checkpoint in {self.ckpt_dir}, but the folder holds a run ({', '.join(left[:4])}"
                    f"{' ...' if len(left) > 4 else ''}); starting over there would mix two runs: move them away "
                    f"to start over, or use a new OUTPUT_DIR")
            return None
        if s.get("iter", 0) and s.get("clips_per_video", 1) != self.clips_per_video:
            raise ckpt.CheckpointError(
                f"{path} was written mid-epoch with DATA.TRAIN_CLIPS_PER_VIDEO {s.get('clips_per_video', 1)}, but this "
                f"run has {self.clips_per_video}; resume from an epoch-end checkpoint or a new OUTPUT_DIR")
        if s.get("iter", 0) and s.get("iters_per_epoch") != self.iters_per_epoch:
            raise ckpt.CheckpointError(
                f"{path} was written mid-epoch with {s.get('iters_per_epoch')} iterations/epoch, but this run has "
                f"{self.iters_per_epoch} (batch size or data changed); resume from an epoch-end checkpoint or a new OUTPUT_DIR")
        for line in run_folder.check_config(s.get("cfg"), cfg, path):
            logger.warning("%s", line)
        if os.path.basename(path) == ckpt.BEST_NAME and not target:
            bad = ", ".join(os.path.basename(p) for p in found["corrupt"]) or "none left"
            logger.warning("no usable step checkpoint in %s (corrupt: %s): resuming from best.pt (epoch %d, step %d); "
                           "the training after it is redone", self.ckpt_dir, bad, s.get("epoch", 0),
                           s.get("global_step", 0))
        if found["ignored"]:
            logger.warning("ignoring checkpoint(s) newer than %s that %s does not list (an interrupted save, or copied "
                           "in): %s", os.path.basename(path), m.path, ", ".join(found["ignored"]))
        if not found["verified"]:
            logger.warning("%s is not listed in %s (written by an older vidrec, or copied in): its integrity cannot be "
                           "checked; it is listed from now on", path, m.path)
            with open(path, "rb") as f:
                m.add(os.path.basename(path), f.read(), s, healthy=None)
            m.save()
        if found.get("branch"):  # TRAIN.RESUME_FROM, all checks passed: set the later checkpoints aside
            later = found["branch"].pop("later")
            dest = ckpt.move_aside(self.ckpt_dir, later, "abandoned", m)
            if dest:
                m.save()
                logger.warning("TRAIN.RESUME_FROM %s: the %d later checkpoint(s) of the abandoned continuation moved "
                               "to %s", os.path.basename(path), len(later), dest)
            self.branch = found["branch"]
        self._reconcile_best(path, s)
        self._decided = (path, s)
        return path

    def _resume_from(self, target: str, auto: Dict) -> Dict:
        """TRAIN.RESUME_FROM: that checkpoint of this run; the later ones are moved aside (not deleted).

        Applied once: when the newest checkpoint already continues from it (a restart with the same
        command line), training continues from the newest."""
        m = self.manifest
        tpath = target if os.path.isabs(target) or os.path.exists(target) else os.path.join(self.ckpt_dir, target)
        tpath, name = os.path.abspath(tpath), os.path.basename(tpath)
        if os.path.dirname(tpath) != os.path.abspath(self.ckpt_dir):
            raise run_folder.RunFolderError(f"TRAIN.RESUME_FROM {target}: not a checkpoint of this run (it must be in "
                                    f"{self.ckpt_dir}); to start from another run's weights use TRAIN.CHECKPOINT_FILE")
        newest = auto["state"] or {}
        branch = newest.get("branch") or {}
        if branch.get("from") == name and int(newest.get("global_step", -1)) >= int(branch.get("global_step", 0)):
            logger.info("TRAIN.RESUME_FROM %s was applied before (%s continues from it): resuming from the newest "
                        "checkpoint; to go back to it again, move the newer checkpoints away", name,
                        os.path.basename(auto["path"]))
            return auto
        if not os.path.isfile(tpath):
            raise run_folder.RunFolderError(f"TRAIN.RESUME_FROM {target}: no such checkpoint")
        verified = m.verify(tpath)
        s = ckpt.load_verified(tpath, m)
        here = (int(s.get("epoch", 0)), int(s.get("iter", 0)))
        names = [os.path.basename(p) for p in ckpt.list_checkpoints(self.ckpt_dir)]
        later = [n for n in names if ckpt.position(n) > here]
        return {"path": tpath, "state": s, "verified": verified is True, "corrupt": [], "ignored": [],
                "branch": {"from": name, "global_step": int(s.get("global_step", 0)), "later": later}}

    def _reconcile_best(self, path: str, s: Dict) -> None:
        """After a resume, best.pt must hold the best validation the resumed history records."""
        if "best" not in s:
            return  # written before best.pt was tracked: nothing to compare with
        m, exp = self.manifest, s["best"]
        bpath = os.path.join(self.ckpt_dir, ckpt.BEST_NAME)
        if os.path.abspath(path) == os.path.abspath(bpath):
            return  # resuming from best.pt itself: its own record
        have, entry = os.path.isfile(bpath), m.get(ckpt.BEST_NAME)
        if have and entry is None and exp is not None:  # not listed (manifest lost): judge it by its contents
            try:
                if int(ckpt.safe_load(bpath).get("global_step", -1)) == int(exp["global_step"]):
                    with open(bpath, "rb") as f:
                        m.add(ckpt.BEST_NAME, f.read(), exp)
                    m.save()
                    return
            except ckpt.CheckpointError:
                pass
        if exp is None:
            if have and os.path.abspath(path) != os.path.abspath(bpath):
                dest = ckpt.move_aside(self.ckpt_dir, [ckpt.BEST_NAME], "stale", m)
                m.save()
                logger.warning("best.pt is from a part of training after %s, which has no validation yet: moved to %s",
                               os.path.basename(path), dest)
            return
        if have and entry and int(entry.get("global_step", -1)) == int(exp["global_step"]) and m.verify(bpath):
            return
        src = None
        if int(s.get("global_step", -1)) == int(exp["global_step"]):
            src = path
        else:
            for p in ckpt.list_checkpoints(self.ckpt_dir):
                e = m.get(os.path.basename(p))
                if e and int(e.get("global_step", -1)) == int(exp["global_step"]) and m.verify(p):
                    src = p
        was = "missing" if not have else ("stale (step %s)" % entry.get("global_step") if entry else "not verifiable")
        if src is not None and os.path.abspath(src) != os.path.abspath(bpath):
            with open(src, "rb") as f:
                data = f.read()
            ckpt.write_bytes(bpath, data)
            m.files[ckpt.BEST_NAME] = dict(m.get(os.path.basename(src)), source=os.path.basename(src))
            m.save()
            logger.warning("best.pt was %s: re-created from %s, the best validation in the history (epoch %d)", was,
                           os.path.basename(src), exp["epoch"])
            return
        if have:
            ckpt.move_aside(self.ckpt_dir, [ckpt.BEST_NAME], "stale", m)
            m.save()
        logger.warning("best.pt was %s and the history's best validation (epoch %d) has no checkpoint left: best.pt "
                       "is written again at the next validation that beats it (until then TEST.WEIGHTS best uses the "
                       "final weights)", was, exp["epoch"])

    def _resume(self, path: Optional[str]) -> bool:
        if path is None:
            self._metrics_lines = 0  # from scratch: records of an attempt that wrote no checkpoint are dropped
            return False
        decided = getattr(self, "_decided", None)
        s = decided[1] if decided and decided[0] == path else ckpt.safe_load(path)  # rank 0 has it loaded already
        self._decided = None
        self.net.load_state_dict(s["model"])
        self.optimizer.load_state_dict(s["optimizer"])
        if self.scaler is not None and s.get("scaler"):
            self.scaler.load_state_dict(s["scaler"])
        self.epoch, self.iter, self.global_step = int(s["epoch"]), int(s["iter"]), int(s["global_step"])
        self.meters = {k: float(v) for k, v in s["meters"].items()}
        self.history = list(s["history"])
        self.best_top1 = float(s["best_top1"])
        self._metrics_lines = s.get("metrics_lines")  # records the checkpoint saw (older checkpoints: None)
        self._best_known = "best" in s
        self.best_pos = s.get("best")
        self.last_healthy = s.get("last_healthy")
        self.loss_ema = s.get("loss_ema")
        self.branch = self.branch or s.get("branch")
        rng = s["rng"]
        if len(rng) == self.ctx.world_size:
            set_rng_state(rng[self.ctx.rank])
        else:
            logger.warning("checkpoint has RNG states for %d process(es), this run has %d: RNG streams re-seeded "
                           "(data order and augmentation are unaffected; dropout is)", len(rng), self.ctx.world_size)
            seed_all(mix_seed(self.cfg.RNG_SEED, self.ctx.rank, self.global_step))
        logger.info("resumed from %s (epoch %d, iteration %d/%d)", path, self.epoch, self.iter, self.iters_per_epoch)
        return True

    # ------------------------------------------------------------------ loop
    @_close_after
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
            final = ckpt.export_safetensors(self.net, os.path.join(self.out, "model_final.safetensors"))
            logger.info("final weights: %s", final)
        best = os.path.join(self.ckpt_dir, ckpt.BEST_NAME)
        which = "final"
        if cfg.TEST.WEIGHTS == "best" and not os.path.isfile(best):
            logger.warning("TEST.WEIGHTS best, but there is no %s (no validation ran, or its checkpoint was lost): "
                           "using the final weights", best)
        if cfg.TEST.WEIGHTS == "best" and os.path.isfile(best):
            s = ckpt.load_verified(best, ckpt.Manifest(self.ckpt_dir))
            self.net.load_state_dict(s["model"])
            which = f"best-validation (epoch {s['epoch']})"
            logger.info("using the best-validation weights (epoch %d) for the model folder and the test: %s",
                        s["epoch"], best)
        if self.ctx.is_main:
            model_dir = save_pretrained(self.net, cfg, os.path.join(self.out, "model"),
                                        getattr(self.train_set, "class_names", None))
            logger.info("model folder (%s weights): %s; use it with: vidrec predict --model %s VIDEO",
                        which, model_dir, model_dir)
        distributed.barrier()
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
        progress = Progress(self.iters_per_epoch, f"epoch {self.epoch + 1}/{cfg.SOLVER.MAX_EPOCH}", initial=self.iter,
                            log_period=cfg.LOG_PERIOD, enabled=ctx.is_main)
        t0 = time.time()
        while self.iter < self.iters_per_epoch:
            lr = lr_at(cfg, self.epoch + self.iter / self.iters_per_epoch)
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
            ema = self.loss_ema
            self.loss_ema = step_loss if ema is None else (1 - _LOSS_EMA) * ema + _LOSS_EMA * step_loss
            progress.update(int(stats[_COUNT]), loss=step_loss, lr=lr)
            if self.global_step % cfg.LOG_PERIOD == 0:
                self.mlog.log({"type": "train_iter", "epoch": self.epoch, "iter": self.iter, "step": self.global_step,
                               "loss": step_loss, "lr": lr}, step=self.global_step)
            if cfg.TRAIN.CHECKPOINT_ITERS > 0 and self.iter % cfg.TRAIN.CHECKPOINT_ITERS == 0 and self.iter < self.iters_per_epoch:
                self.meters["time"] += time.time() - t0
                t0 = time.time()
                self.save()
        progress.close()
        m = self.meters
        m["time"] += time.time() - t0
        videos = int(m["count"]) // self.clips_per_video  # count is clips; failures are videos
        check_failure_rate(int(m["failed"]), videos, cfg.DATA.MAX_FAIL_RATE)
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
        distributed.all_reduce_sum(stats)  # every rank sees every rank's verdict: all stop together
        if stats[_BAD_LOSS] > 0 or stats[_BAD_GRAD] > 0:
            parts = []
            if stats[_BAD_LOSS] > 0:
                parts.append(f"loss (in {int(stats[_BAD_LOSS])} of {ctx.world_size * self.accum} micro-batches "
                             f"across {ctx.world_size} process(es))")
            if stats[_BAD_GRAD] > 0:
                parts.append("gradient")
            raise NonFiniteError(
                f"non-finite {' and '.join(parts)} at epoch {self.epoch + 1}, iteration {self.iter + 1}/{self.iters_per_epoch} "
                f"(global step {self.global_step + 1}); training stopped on all ranks before applying this "
                f"update. {self._retry_hint()}")
        apply_update(self.optimizer, self.scaler)
        return stats

    def _retry_hint(self) -> str:
        fixes = "a lower SOLVER.BASE_LR, warm-up (SOLVER.WARMUP_EPOCHS), TRAIN.CLIP_GRAD_NORM, or fp32"
        h = self.last_healthy
        if h and os.path.isfile(os.path.join(self.ckpt_dir, h["name"])):
            path = os.path.join(self.ckpt_dir, h["name"])
            return (f"The last healthy checkpoint (smoothed training loss finite and at most {HEALTHY_LOSS_FACTOR:g} x "
                    f"ln(NUM_CLASSES)) is {path} (after global step {h['global_step']}): retry from it with "
                    f"TRAIN.RESUME_FROM {path} and {fixes}.")
        return f"No healthy checkpoint of this run to retry from: start over in a new OUTPUT_DIR with {fixes}."


def train(cfg) -> Dict:
    """Train (resuming when a checkpoint exists), validate periodically, then test. Returns a summary."""
    ctx = distributed.init_distributed(cfg)
    try:
        return Trainer(cfg, ctx).fit()
    finally:
        distributed.cleanup(ctx)
