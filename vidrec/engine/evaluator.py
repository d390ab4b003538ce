"""Multi-view evaluation (10 temporal x 3 spatial by default): softmax averaged per video.

Under DDP each rank scores a padded shard; per-video results are gathered and
the padding duplicates dropped, so metrics equal a single-process run.
Outputs (main rank): scores.npz (re-scorable, see metrics.rescore_npz),
metrics.json, per_class.csv, confusion.png.
"""
from __future__ import annotations

import csv
import json
import logging
import os
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..data.transforms import ViewCutter
from ..utils.cpus import loader_workers
from ..utils.io import atomic_write_text
from ..utils.rng import mix_seed, worker_init_fn
from . import distributed
from .metrics import (compute_metrics, confusion_matrix, dedup_by_index, format_metrics, per_class_rows,
                      save_scores_npz)
from .precision import autocast, memory_format
from .progress import Progress

logger = logging.getLogger("vidrec")


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model


def make_eval_loader(dataset, cfg, ctx: distributed.DistContext, batch_size: Optional[int] = None) -> DataLoader:
    from ..data import collate_test
    from .sampler import EvalSampler

    g = torch.Generator()
    g.manual_seed(mix_seed(cfg.RNG_SEED, ctx.rank, 0xE7A1))  # own generator: never touches global RNG
    nw = loader_workers(cfg.DATA_LOADER.NUM_WORKERS)[0]
    return DataLoader(dataset, batch_size=batch_size or cfg.TEST.BATCH_SIZE,
                      sampler=EvalSampler(len(dataset), ctx.rank, ctx.world_size), num_workers=nw,
                      collate_fn=collate_test, pin_memory=cfg.DATA_LOADER.PIN_MEMORY and ctx.device.type == "cuda",
                      worker_init_fn=worker_init_fn, generator=g,
                      prefetch_factor=cfg.DATA_LOADER.PREFETCH_FACTOR if nw > 0 else None)


@torch.no_grad()
def evaluate(model: torch.nn.Module, dataset, cfg, ctx: distributed.DistContext, desc: str = "test",
             show_progress: bool = True) -> Dict:
    """Score every video of ``dataset``; returns merged per-video arrays and metrics (same on all ranks)."""
    net = _unwrap(model)
    was_training = net.training
    net.eval()
    loader = make_eval_loader(dataset, cfg, ctx)
    # Views are cut from each video's decoded frames on the model's device (see ViewCutter).
    cut = ViewCutter(ctx.device, cfg.DATA.MEAN, cfg.DATA.STD, memory_format(cfg.MEMORY_FORMAT, ctx.device),
                     cfg.TEST.CLIPS_PER_FORWARD)
    ids: List[int] = []
    paths: List[str] = []
    labels: List[int] = []
    scores: List[np.ndarray] = []
    nviews: List[int] = []
    clip_ok: List[int] = []
    errors: List[tuple] = []
    partial: List[tuple] = []  # scored on the frames before a break in the stream (DATA.PARTIAL_VIDEO keep)
    dataset_paths = getattr(dataset, "paths", None)
    progress = Progress(len(loader), desc, log_period=cfg.LOG_PERIOD, enabled=ctx.is_main and show_progress)
    for batch in loader:
        b_labels = torch.as_tensor(batch["labels"]).long()
        b_indices = torch.as_tensor(batch["indices"]).long()
        B = len(b_indices)
        # video_index holds dataset indices; map them to positions in this batch.
        pos_of = {}
        for b, i in enumerate(b_indices.tolist()):
            pos_of.setdefault(i, b)
        vid = torch.tensor([pos_of[i] for i in batch["video_index"].tolist()], dtype=torch.long)
        errors.extend((int(e[0]), str(e[1]), str(e[2])) for e in batch.get("errors", []))
        partial.extend((int(e[0]), str(e[1]), str(e[2])) for e in batch.get("warnings", []))
        if len(vid) == 0:
            progress.update(0)
            continue
        probs = []
        for x in cut(batch["unions"]):
            with autocast(cfg.TRAIN.MIXED_PRECISION, ctx.device):
                logits = net(x)
            probs.append(F.softmax(logits.float(), dim=1).cpu().double())
        probs = torch.cat(probs)
        sums = torch.zeros(B, probs.shape[1], dtype=torch.float64).index_add_(0, vid, probs)
        counts = torch.bincount(vid, minlength=B)
        correct = torch.bincount(vid, weights=(probs.argmax(1) == b_labels[vid]).double(), minlength=B)
        for b in range(B):
            if counts[b] == 0:  # failed video: reported through errors, not scored
                continue
            i = int(b_indices[b])
            ids.append(i)
            paths.append(str(dataset_paths[i]) if dataset_paths is not None else str(i))
            labels.append(int(b_labels[b]))
            scores.append((sums[b] / counts[b]).numpy())
            nviews.append(int(counts[b]))
            clip_ok.append(int(correct[b]))
        progress.update(len(vid))
    progress.close()
    if was_training:
        net.train()

    num_classes = _num_outputs(net, cfg)
    local = {
        "ids": np.asarray(ids, dtype=np.int64), "paths": paths, "labels": np.asarray(labels, dtype=np.int64),
        "scores": np.stack(scores) if scores else np.zeros((0, num_classes)),
        "nviews": np.asarray(nviews, dtype=np.int64), "clip_ok": np.asarray(clip_ok, dtype=np.int64),
        "errors": errors, "partial": partial,
    }
    return merge_shards(distributed.all_gather_object(local), num_classes)


def _num_outputs(net, cfg) -> int:
    head = getattr(net, "get_classifier", None)
    if callable(head):
        fc = head()
        if hasattr(fc, "out_features"):
            return int(fc.out_features)
    return int(cfg.MODEL.NUM_CLASSES)


def merge_shards(shards: List[Dict], num_classes: int) -> Dict:
    """Concatenate per-rank results, drop the sampler's padding duplicates, compute metrics."""
    ids = np.concatenate([s["ids"] for s in shards]) if shards else np.zeros(0, np.int64)
    keep = dedup_by_index(ids)
    cat = lambda k: np.concatenate([np.asarray(s[k]) for s in shards])[keep]  # noqa: E731
    paths = [p for s in shards for p in s["paths"]]
    scores = np.concatenate([s["scores"].reshape(-1, num_classes) for s in shards])[keep]
    err_by_id = {}
    for s in shards:
        for e in s["errors"]:
            err_by_id.setdefault(e[0], e)
    scored = set(ids.tolist())
    errors = [err_by_id[k] for k in sorted(err_by_id) if k not in scored]
    partial = sorted({e[0]: e for s in shards for e in s.get("partial", [])}.values())
    out = {
        "video_ids": ids[keep], "paths": [paths[k] for k in keep], "labels": cat("labels"),
        "scores": scores, "num_views": cat("nviews"), "clip_correct": cat("clip_ok"), "errors": errors,
        "partial": partial,
    }
    out["metrics"] = compute_metrics(out["scores"], out["labels"], num_classes=num_classes,
                                     clip_correct=out["clip_correct"], clip_count=out["num_views"],
                                     num_failed=len(errors), num_partial=len(partial))
    return out


def save_results(result: Dict, out_dir: str, class_names=None) -> Dict[str, str]:
    """scores.npz, metrics.json, per_class.csv and confusion.png in ``out_dir``."""
    from .plots import plot_confusion

    os.makedirs(out_dir, exist_ok=True)
    files = {"scores": os.path.join(out_dir, "scores.npz"), "metrics": os.path.join(out_dir, "metrics.json"),
             "per_class": os.path.join(out_dir, "per_class.csv"), "confusion": os.path.join(out_dir, "confusion.png")}
    save_scores_npz(files["scores"], result["video_ids"], result["paths"], result["labels"], result["scores"],
                    result["num_views"], result["clip_correct"], class_names=class_names, failed=result["errors"])
    m = dict(result["metrics"])
    m["failed_videos"] = [{"index": e[0], "path": e[1], "reason": e[2]} for e in result["errors"]]
    m["partial_videos"] = [{"index": e[0], "path": e[1], "warning": e[2]} for e in result.get("partial", [])]
    atomic_write_text(files["metrics"], json.dumps(m, indent=2))
    num_classes = result["scores"].shape[1]
    pred = result["scores"].argmax(1) if len(result["labels"]) else np.zeros(0, np.int64)
    cm = confusion_matrix(pred, result["labels"], num_classes)
    with open(files["per_class"], "w", newline="") as f:
        rows = per_class_rows(cm, class_names)
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    try:
        plot_confusion(cm, files["confusion"], class_names)
    except Exception as e:  # noqa: BLE001 - a plot must never lose the numbers
        logger.warning("confusion plot failed: %s", e)
    return files


def log_failures(result: Dict, limit: int = 20) -> None:
    for idx, path, warning in result.get("partial", [])[:limit]:
        logger.warning("  [%d] %s: scored on part of the video: %s", idx, path, warning)
    errs = result["errors"]
    if errs:
        logger.warning("%d video(s) failed to load and were not scored:", len(errs))
        for idx, path, reason in errs[:limit]:
            logger.warning("  [%d] %s: %s", idx, path, reason)
        if len(errs) > limit:
            logger.warning("  ... and %d more (see metrics.json)", len(errs) - limit)


def _default_weights(cfg) -> str:
    from .checkpoint import BEST_NAME, list_checkpoints  # noqa: F401

    final = os.path.join(cfg.OUTPUT_DIR, "model_final.safetensors")
    if os.path.isfile(final):
        return final
    ckpts = list_checkpoints(os.path.join(cfg.OUTPUT_DIR, "checkpoints"))
    if ckpts:
        return ckpts[-1]
    raise FileNotFoundError(
        f"no weights to test: set TEST.CHECKPOINT_FILE, or train first so that {final} or a checkpoint "
        f"in {cfg.OUTPUT_DIR}/checkpoints exists")


def evaluate_weights(cfg) -> Dict:
    """Load weights, run multi-view testing on TEST.SPLIT, save and print the results (tools/test_net.py)."""
    from ..data import build_dataset
    from ..models import build_model
    from .checkpoint import load_weights
    from .progress import setup_logging
    from .run_info import write_run_info

    ctx = distributed.init_distributed(cfg)
    try:
        setup_logging(cfg.OUTPUT_DIR, ctx.rank)
        model = build_model(cfg)
        weights = cfg.TEST.CHECKPOINT_FILE or _default_weights(cfg)
        load_weights(model, weights, strict=True)
        logger.info("testing %s with weights %s", cfg.MODEL.ARCH, weights)
        if ctx.is_main:
            write_run_info(cfg, model, cfg.OUTPUT_DIR, ctx.world_size, tag="_test")
        model.to(ctx.device, memory_format=memory_format(cfg.MEMORY_FORMAT, ctx.device))
        dataset = build_dataset(cfg, cfg.TEST.SPLIT)
        return run_test(model, dataset, cfg, ctx)
    finally:
        distributed.cleanup(ctx)


def run_test(model, dataset, cfg, ctx: distributed.DistContext) -> Dict:
    """Evaluate, then (main rank) save everything under OUTPUT_DIR/test_<split>/ and log a summary."""
    views = cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS
    logger.info("%d-view testing (%d temporal x %d spatial) on %d %s videos", views, cfg.TEST.NUM_ENSEMBLE_VIEWS,
                cfg.TEST.NUM_SPATIAL_CROPS, len(dataset), cfg.TEST.SPLIT)
    result = evaluate(model, dataset, cfg, ctx, desc=f"test[{cfg.TEST.SPLIT}]")
    if ctx.is_main:
        out_dir = os.path.join(cfg.OUTPUT_DIR, f"test_{cfg.TEST.SPLIT}")
        files = save_results(result, out_dir, getattr(dataset, "class_names", None))
        log_failures(result)
        logger.info("%s", format_metrics(result["metrics"]))
        logger.info("results: %s", out_dir)
        result["files"] = files
    distributed.barrier()
    return result
