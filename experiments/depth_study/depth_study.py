#!/usr/bin/env python
"""Depth study: does iResNet3D keep converging where ResNet3D slows down with depth? (issue #15)

The paper (Duta et al., ICPR 2020, Sec. 4, Figs. 4, 5, 7) reports that baseline ResNets converge more
slowly the deeper they are, and not at all at 302 and 404 layers, while the iResNets' early convergence
does not depend on depth. This script trains every run of a grid (family x depth x seed) with one recipe
through vidrec's normal training path and writes a table and a figure of training curves to a Markdown
page, with the command, the study config and the machine.

A study config (YAML, see cpu.yaml next to this file) holds the grid, the seeds, the data (the synthetic
motion task or real lists), the recipe (vidrec config keys, the same for every run) and what is measured:

  python experiments/depth_study/depth_study.py experiments/depth_study/cpu.yaml     # about 1 h on 2 cores
  python experiments/depth_study/depth_study.py experiments/depth_study/cpu.yaml --estimate-only
  python experiments/depth_study/depth_study.py STUDY.yaml --out DIR --doc PAGE.md [KEY VALUE ...]

Each run trains in OUT/runs/<arch>-seed<k>/ (an ordinary vidrec run folder) and is cached as
OUT/cache/<arch>-seed<k>.json once tested. A cached run is never retrained; an interrupted one resumes
from its last checkpoint (vidrec's auto-resume); cells added to the grid later run alone. Trailing
KEY VALUE pairs override the recipe of every run (that is another study: give it another --out).
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import logging
import math
import multiprocessing
import os
import platform
import shutil
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import yaml  # noqa: E402

from vidrec.engine.trainer import STEP_STATS, NonFiniteError, Trainer  # noqa: E402
from vidrec.utils.io import atomic_write_text  # noqa: E402

FAMILIES = {"resnet3d": "ResNet3D", "iresnet3d": "iResNet3D", "resstage3d": "ResStage3D",
            "preact_resnet3d": "pre-act ResNet3D"}
REQUIRED = ("grid", "seeds", "data", "recipe", "measure")


class WindowTrainer(Trainer):
    """vidrec's Trainer, plus a "train_window" record (loss and clip top-1 over the last LOG_PERIOD steps)
    in metrics.jsonl: the trainer's own per-step records carry the loss only, and a per-epoch accuracy is
    too coarse for a study of the first few hundred steps. The records go through the run's MetricsLog,
    so a resumed run drops and redoes them like every other record."""

    def step(self, data):
        stats = super().step(data)
        w = self.__dict__.setdefault("_window", [0.0, 0.0, 0.0, 0])
        w[0] += float(stats[STEP_STATS["loss_sum"]])
        w[1] += float(stats[STEP_STATS["correct"]])
        w[2] += float(stats[STEP_STATS["clips"]])
        w[3] += 1
        step = self.global_step + 1  # the trainer counts the step after this returns
        if step % self.cfg.LOG_PERIOD == 0 or step == self.cfg.SOLVER.MAX_EPOCH * self.iters_per_epoch:
            self.mlog.log({"type": "train_window", "step": step, "steps": w[3], "clips": int(w[2]),
                           "loss": w[0] / w[2], "top1": 100.0 * w[1] / w[2]}, step=step)
            self._window = [0.0, 0.0, 0.0, 0]
        return stats


# ---------------------------------------------------------------------------- the study and its runs
def load_study(path: str) -> dict:
    with open(path) as f:
        text = f.read()
    study = yaml.safe_load(text) or {}
    missing = [k for k in REQUIRED if k not in study]
    if missing:
        raise SystemExit(f"{path}: the study config lacks {', '.join(missing)}")
    unknown = sorted(set(study["grid"]) - set(FAMILIES))
    if unknown:
        raise SystemExit(f"{path}: unknown families {unknown}; known: {', '.join(FAMILIES)}")
    return dict(study, _path=path, _text=text)


def grid_runs(study: dict) -> list:
    return [{"family": fam, "depth": int(d), "seed": int(s), "arch": f"{fam}_{d}", "name": f"{fam}_{d}-seed{s}"}
            for fam, depths in study["grid"].items() for d in depths for s in study["seeds"]]


def fingerprint(study: dict, run: dict, opts) -> str:
    """What a run's result depends on; a cached result with another fingerprint belongs to another study."""
    key = {"recipe": study["recipe"], "data": study["data"], "opts": list(opts), "arch": run["arch"],
           "seed": run["seed"]}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def prepare_data(study: dict, out: str) -> dict:
    """The synthetic dataset (written once under OUT/data) or the configured lists."""
    d = study["data"]
    if "synthetic" in d:
        from vidrec.data import make_synthetic_dataset

        kw = dict(d["synthetic"])
        r = make_synthetic_dataset(os.path.join(out, "data"), videos_per_class=tuple(kw.pop("videos_per_class")),
                                   size=tuple(kw.pop("size")), **kw)
        return {k: r[k] for k in ("root", "train", "val", "num_classes", "classes")}
    lists = d["lists"]
    return {"root": lists["root"], "train": lists["train"], "val": lists["val"],
            "num_classes": int(lists["num_classes"]), "classes": lists.get("classes", "")}


def run_config(study: dict, data: dict, run: dict, out: str, opts=()):
    """The vidrec config of one run: defaults <- the study's recipe <- this run <- command-line overrides."""
    from vidrec.config import get_cfg
    from vidrec.config.loader import merge_dict, merge_opts, validate

    cfg = get_cfg()
    merge_dict(cfg, study["recipe"], f"{study['_path']} (recipe)")
    merge_dict(cfg, {"MODEL": {"ARCH": run["arch"], "NUM_CLASSES": data["num_classes"], "CLASS_NAMES": data["classes"]},
                     "DATA": {"PATH_TO_DATA_DIR": data["root"], "TRAIN_LIST": data["train"],
                              "VAL_LIST": data["val"], "TEST_LIST": data["val"]},
                     "TEST": {"ENABLE": True, "SPLIT": "val"}, "RNG_SEED": run["seed"],
                     "OUTPUT_DIR": os.path.join(out, "runs", run["name"])}, "depth study")
    merge_opts(cfg, opts)
    validate(cfg)
    cfg.freeze()
    return cfg


def cache_path(out: str, run: dict) -> str:
    return os.path.join(out, "cache", run["name"] + ".json")


def load_cached(out: str, run: dict, fp: str):
    path = cache_path(out, run)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        rec = json.load(f)
    if rec.get("fingerprint") != fp:
        raise SystemExit(f"{path} was made with another recipe, data or overrides than this study's: "
                         f"use another --out, or delete it to rerun that run")
    return rec


# ---------------------------------------------------------------------------- one run
def train_run(study: dict, data: dict, run: dict, out: str, opts=()) -> dict:
    """Train and test one run (resuming its folder if an earlier attempt was interrupted), then cache it.
    A run whose loss or gradient becomes non-finite is a result ("diverged"), not an error."""
    from vidrec.engine import distributed

    cfg = run_config(study, data, run, out, opts)
    os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    t0, status, error = time.time(), "ok", None
    with open(os.path.join(cfg.OUTPUT_DIR, "console.log"), "a") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        ctx = distributed.init_distributed(cfg)
        try:
            WindowTrainer(cfg, ctx).fit()
        except NonFiniteError as e:
            status, error = "diverged", str(e)
        finally:
            distributed.cleanup(ctx)
            for h in list(logging.getLogger("vidrec").handlers):  # they write to files closed here
                logging.getLogger("vidrec").removeHandler(h)
                h.close()
    rec = dict(collect(cfg.OUTPUT_DIR, run), num_classes=cfg.MODEL.NUM_CLASSES, status=status, error=error,
               wall_seconds=round(time.time() - t0, 1), fingerprint=fingerprint(study, run, opts))
    os.makedirs(os.path.dirname(cache_path(out, run)), exist_ok=True)
    atomic_write_text(cache_path(out, run), json.dumps(rec, indent=1))
    if not study.get("keep_checkpoints", True):
        shutil.rmtree(os.path.join(cfg.OUTPUT_DIR, "checkpoints"), ignore_errors=True)
    return rec


def collect(run_dir: str, run: dict) -> dict:
    """A run's numbers from its metrics.jsonl and model_complexity.json."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    curve = [{k: r[k] for k in ("step", "clips", "loss", "top1")} for r in recs if r["type"] == "train_window"]
    epochs = [{k: r[k] for k in ("epoch", "loss", "top1", "lr", "seconds")} for r in recs if r["type"] == "train_epoch"]
    test = next((r for r in reversed(recs) if r["type"] == "test"), None)
    with open(os.path.join(run_dir, "model_complexity.json")) as f:
        cx = json.load(f)
    steps = curve[-1]["step"] if curve else 0
    train_s = sum(e["seconds"] for e in epochs)
    val = None if test is None else {k: test[k] for k in ("top1", "top5", "mean_class_acc", "clip_top1",
                                                          "num_videos", "num_failed") if k in test}
    return dict(run, params=cx.get("params"), gflops=cx.get("fvcore_gflops"), steps=steps, curve=curve,
                epochs=epochs, val=val, train_seconds=round(train_s, 1),
                seconds_per_step=round(train_s / steps, 4) if steps and train_s else None)


def study_span(out: str, records: dict) -> float:
    """Seconds from the start of the first cached run to the end of the last (a cache file is written as
    its run ends): the study's wall time, however many invocations it took (pauses included)."""
    spans = [(end - rec["wall_seconds"], end) for rec in records.values()
             for end in [os.path.getmtime(cache_path(out, rec))]]
    return max(e for _, e in spans) - min(s for s, _ in spans) if spans else 0.0


def _worker(args):
    try:
        return args[2]["name"], train_run(*args), None
    except Exception as e:  # noqa: BLE001 - reported, the other runs go on; not cached, so it reruns next time
        return args[2]["name"], None, f"{type(e).__name__}: {e}"


# ---------------------------------------------------------------------------- time estimate
def time_arch(cfg, steps: int = 5) -> dict:
    """Seconds per training step and per test clip of ``cfg``'s network, on random clips of its shapes."""
    import torch
    import torch.nn.functional as F

    from vidrec.engine.precision import memory_format
    from vidrec.models import build_model
    from vidrec.utils.device import resolve_device

    if cfg.NUM_THREADS > 0:
        torch.set_num_threads(cfg.NUM_THREADS)
    dev = resolve_device(cfg.DEVICE)
    fmt = memory_format(cfg.MEMORY_FORMAT, dev)
    model = build_model(cfg).to(dev, memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    d = cfg.DATA
    x = torch.randn(cfg.TRAIN.BATCH_SIZE, 3, d.NUM_FRAMES, d.TRAIN_CROP_SIZE, d.TRAIN_CROP_SIZE, device=dev)
    x = x.contiguous(memory_format=fmt)
    y = torch.randint(0, cfg.MODEL.NUM_CLASSES, (cfg.TRAIN.BATCH_SIZE,), device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def train_step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    train_step()  # warm-up
    times = []
    for _ in range(steps):
        sync()
        t = time.perf_counter()
        train_step()
        sync()
        times.append(time.perf_counter() - t)
    per_step = sorted(times)[len(times) // 2]  # the median: robust to a hiccup
    model.eval()
    n = min(cfg.TEST.BATCH_SIZE * cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS, 32)
    xt = torch.randn(n, 3, d.NUM_FRAMES, d.TEST_CROP_SIZE, d.TEST_CROP_SIZE, device=dev).contiguous(memory_format=fmt)
    with torch.no_grad():
        model(xt)
        sync()
        t = time.perf_counter()
        model(xt)
        sync()
    return {"step": per_step, "test_clip": (time.perf_counter() - t) / n}


def time_data(cfg, batches: int = 2) -> dict:
    """Seconds to load one training batch and one test video (all its views) in this process."""
    from vidrec.data import build_dataset

    train = build_dataset(cfg, "train")
    n = min(len(train), batches * cfg.TRAIN.BATCH_SIZE)
    t = time.perf_counter()
    for i in range(n):
        train[(i, i)]
    per_batch = (time.perf_counter() - t) / n * cfg.TRAIN.BATCH_SIZE
    val = build_dataset(cfg, "val")
    t = time.perf_counter()
    for i in range(min(len(val), 2)):
        val[i]
    return {"batch": per_batch, "val_video": (time.perf_counter() - t) / max(min(len(val), 2), 1),
            "steps": cfg.SOLVER.MAX_EPOCH * (len(train) // cfg.TRAIN.BATCH_SIZE), "val_videos": len(val)}


def estimate(study: dict, data: dict, runs: list, out: str, opts, jobs: int) -> dict:
    """Predicted seconds per pending run (timed steps per network, timed data loading, a fixed start-up
    cost) and the wall time of running them on ``jobs`` parallel slots, longest first."""
    fixed = float(study.get("estimate", {}).get("startup_seconds", 10.0))
    cfgs = {r["arch"]: run_config(study, data, r, out, opts) for r in runs}
    first = next(iter(cfgs.values()))
    io = time_data(first)
    views = first.TEST.NUM_ENSEMBLE_VIEWS * first.TEST.NUM_SPATIAL_CROPS
    per_arch = {}
    for arch, cfg in cfgs.items():
        t = time_arch(cfg)
        per_arch[arch] = dict(t, run=io["steps"] * (t["step"] + io["batch"])
                              + io["val_videos"] * (views * t["test_clip"] + io["val_video"]) + fixed)
    slots = [0.0] * max(jobs, 1)
    for sec in sorted((per_arch[r["arch"]]["run"] for r in runs), reverse=True):
        slots[slots.index(min(slots))] += sec
    return {"per_arch": per_arch, "data": io, "startup_seconds": fixed, "wall": max(slots),
            "cpu": sum(per_arch[r["arch"]]["run"] for r in runs)}


def print_estimate(est: dict, runs: list, jobs: int) -> None:
    io = est["data"]
    print(f"estimate: {io['steps']} steps per run, {io['batch']:.3f} s to load a batch, "
          f"{io['val_videos']} val videos ({io['val_video']:.3f} s to load one), {est['startup_seconds']:.0f} s "
          f"start-up per run")
    print(f"  {'network':<22} {'s/step':>8} {'s/test clip':>12} {'s/run':>8} {'runs':>5}")
    for arch, t in est["per_arch"].items():
        n = sum(r["arch"] == arch for r in runs)
        print(f"  {arch:<22} {t['step']:>8.3f} {t['test_clip']:>12.4f} {t['run']:>8.0f} {n:>5}")
    print(f"  {len(runs)} runs: {est['cpu'] / 60:.1f} min of run time, about {est['wall'] / 60:.1f} min wall "
          f"on {jobs} parallel job(s) (if they do not slow each other down)", flush=True)


# ---------------------------------------------------------------------------- analysis
def smoothed(curve: list, span: int) -> list:
    """(step, loss, top1) at each logged step: the clip-weighted mean over the trailing ``span`` steps."""
    out = []
    for w in curve:
        ws = [v for v in curve if w["step"] - span < v["step"] <= w["step"]]
        n = sum(v["clips"] for v in ws)
        out.append((w["step"], sum(v["loss"] * v["clips"] for v in ws) / n,
                    sum(v["top1"] * v["clips"] for v in ws) / n))
    return out


def summarize(rec: dict, measure: dict) -> dict:
    span, thr = int(measure["smooth_steps"]), float(measure["threshold_top1"])
    sm = smoothed(rec["curve"], span)
    reached = next((s for s, _, a in sm if s >= span and a >= thr), None)
    final = sm[-1] if sm else (0, math.nan, math.nan)
    return {"final_loss": final[1], "final_top1": final[2], "steps_to_threshold": reached,
            "peak_loss": max((v[1] for v in sm), default=math.nan),
            "val_top1": rec["val"]["top1"] if rec.get("val") else math.nan, "diverged": rec["status"] == "diverged"}


def _spread(values, fmt="{:.1f}") -> str:
    v = [x for x in values if x is not None and not math.isnan(x)]
    if not v:
        return "–"
    mean = fmt.format(sum(v) / len(v))
    return mean if len(v) == 1 else f"{mean} ({fmt.format(min(v))}–{fmt.format(max(v))})"


def cells(study: dict, records: dict) -> list:
    """One row per (depth, family) with its runs' summaries, depth-major so that families sit side by side."""
    rows = []
    for depth in sorted({int(d) for ds in study["grid"].values() for d in ds}):
        for fam, depths in study["grid"].items():
            if depth not in [int(d) for d in depths]:
                continue
            recs = [records[n] for n in (f"{fam}_{depth}-seed{s}" for s in study["seeds"]) if n in records]
            rows.append({"family": fam, "depth": depth, "records": recs,
                         "summaries": [summarize(r, study["measure"]) for r in recs]})
    return rows


def table(study: dict, rows: list, views: int) -> str:
    m, steps = study["measure"], max((r["steps"] for row in rows for r in row["records"]), default=0)
    lines = [f"| depth | network | params | final train loss | peak train loss | final train clip top-1 % | "
             f"val top-1 % ({views}-view) | steps to {m['threshold_top1']:g}% train top-1 | s/step |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        s, recs = row["summaries"], row["records"]
        if not recs:
            continue
        reach = " / ".join(str(x["steps_to_threshold"]) if x["steps_to_threshold"] else f">{steps}" for x in s)
        div = sum(x["diverged"] for x in s)
        params = recs[0]["params"]
        lines.append(f"| {row['depth']} | {FAMILIES[row['family']]} | {params / 1e6:.2f}M | "
                     f"{_spread([x['final_loss'] for x in s], '{:.3f}')} | "
                     f"{_spread([x['peak_loss'] for x in s], '{:.2f}')} | {_spread([x['final_top1'] for x in s])} | "
                     f"{_spread([x['val_top1'] for x in s])}{f' ({div} diverged)' if div else ''} | {reach} | "
                     f"{_spread([r['seconds_per_step'] for r in recs], '{:.3f}')} |")
    return "\n".join(lines)


def comparisons(study: dict, rows: list) -> list:
    """ResNet3D vs iResNet3D at each depth where both ran: differences, and whether the seeds' ranges overlap."""
    by = {(r["family"], r["depth"]): r["summaries"] for r in rows if r["summaries"]}
    out = []
    for (fam, depth), base in sorted(by.items(), key=lambda kv: kv[0][1]):
        imp = by.get(("iresnet3d", depth))
        if fam != "resnet3d" or not imp:
            continue
        parts = []
        for key, what, fmt in (("final_loss", "final train loss", "{:+.3f}"),
                               ("final_top1", "final train clip top-1", "{:+.1f} points"),
                               ("val_top1", "val top-1", "{:+.1f} points")):
            a = [x[key] for x in base if not math.isnan(x[key])]
            b = [x[key] for x in imp if not math.isnan(x[key])]
            if a and b:
                if min(len(a), len(b)) < 2:
                    sep = "one seed: no spread to judge it by"
                else:
                    sep = "seed ranges do not overlap" if min(b) > max(a) or max(b) < min(a) else "seed ranges overlap"
                parts.append(f"{what} {fmt.format(sum(b) / len(b) - sum(a) / len(a))} ({sep})")
        reach = [[x["steps_to_threshold"] for x in fam_s] for fam_s in (base, imp)]
        parts.append("steps to threshold {} (ResNet3D) vs {} (iResNet3D)".format(
            *(" / ".join(str(v) if v else "not reached" for v in r) for r in reach)))
        out.append(f"- {depth} layers, iResNet3D minus ResNet3D: " + "; ".join(parts))
    return out


def depth_trends(study: dict, rows: list) -> list:
    """One line per family with two or more depths: how its numbers move with depth (the paper's claim is
    about this trend within a family, not only about the gap between families at one depth)."""
    out = []
    for fam in study["grid"]:
        fam_rows = [r for r in rows if r["family"] == fam and r["summaries"]]
        if len(fam_rows) < 2:
            continue

        def by_depth(key, fmt):
            vals = []
            for r in fam_rows:
                v = [x[key] for x in r["summaries"] if not math.isnan(x[key])]
                vals.append(fmt.format(sum(v) / len(v)) if v else "–")
            return " / ".join(vals)

        depths = " / ".join(str(r["depth"]) for r in fam_rows)
        reached = ", ".join(f"{sum(x['steps_to_threshold'] is not None for x in r['summaries'])}/{len(r['summaries'])}"
                            for r in fam_rows)
        out.append(f"- {FAMILIES[fam]} at {depths} layers: final train loss {by_depth('final_loss', '{:.3f}')}; "
                   f"val top-1 {by_depth('val_top1', '{:.1f}')}%; seeds reaching the threshold {reached}")
    return out


# ---------------------------------------------------------------------------- figure and page
def plot(study: dict, rows: list, path: str) -> None:
    """Fig. 4/7 of the paper at this scale: smoothed training clip top-1 and loss against step, one panel
    per family, one colour per depth (mean of the seeds; the band spans them)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    m = study["measure"]
    classes = {r["num_classes"] for row in rows for r in row["records"]}
    chance = 100.0 / classes.pop() if len(classes) == 1 else None
    fams = list(study["grid"])
    depths = sorted({int(d) for ds in study["grid"].values() for d in ds})
    colours = dict(zip(depths, plt.cm.viridis(np.linspace(0, 0.9, len(depths)))))
    fig, axes = plt.subplots(2, len(fams), figsize=(4 * len(fams), 6.5), sharex=True, sharey="row", squeeze=False)
    for j, fam in enumerate(fams):
        ax_acc, ax_loss = axes[0, j], axes[1, j]
        for row in (r for r in rows if r["family"] == fam and r["records"]):
            curves = [smoothed(r["curve"], int(m["smooth_steps"])) for r in row["records"] if r["curve"]]
            if not curves:
                continue
            n = min(len(c) for c in curves)
            steps = [c[0] for c in curves[0][:n]]
            for ax, k in ((ax_acc, 2), (ax_loss, 1)):
                v = np.array([[c[i][k] for i in range(n)] for c in curves])
                ax.plot(steps, v.mean(0), color=colours[row["depth"]], label=f"{row['depth']} layers")
                if len(v) > 1:
                    ax.fill_between(steps, v.min(0), v.max(0), color=colours[row["depth"]], alpha=0.2, lw=0)
        ax_acc.axhline(m["threshold_top1"], color="grey", ls="--", lw=0.8)  # threshold
        if chance:
            ax_acc.axhline(chance, color="grey", ls=":", lw=0.8)
            ax_loss.axhline(math.log(100.0 / chance), color="grey", ls=":", lw=0.8)  # ln(classes): uniform guess
        ax_acc.set_title(FAMILIES[fam])
        ax_loss.set_xlabel("training step")
        if ax_acc.get_legend_handles_labels()[0]:
            ax_acc.legend(fontsize=7, loc="upper left")
    axes[0, 0].set_ylabel(f"train clip top-1 % (last {m['smooth_steps']} steps)\n-- threshold, .. chance")
    axes[1, 0].set_ylabel(f"train loss (last {m['smooth_steps']} steps)\n.. chance")
    fig.tight_layout()
    tmp = path + ".part.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def write_curves_csv(rows: list, path: str) -> None:
    """Every number the figure is drawn from (raw windows, before smoothing)."""
    lines = ["family,depth,seed,step,clips,loss,top1"]
    for row in rows:
        for r in row["records"]:
            lines += [f"{r['family']},{r['depth']},{r['seed']},{w['step']},{w['clips']},{w['loss']:.5f},{w['top1']:.3f}"
                      for w in r["curve"]]
    atomic_write_text(path, "\n".join(lines) + "\n")


def machine() -> str:
    import torch

    from vidrec.utils.env import cpu_name

    cpu = cpu_name()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return (f"{cpu}, {os.cpu_count()} CPU cores, GPU: {gpu}; python {platform.python_version()}, "
            f"torch {torch.__version__}")


def write_doc(study: dict, records: dict, doc: str, command: str, wall: float, jobs: int, opts=()) -> str:
    from vidrec.config import get_cfg
    from vidrec.config.loader import merge_dict, merge_opts

    c = get_cfg()  # the recipe as resolved (defaults <- recipe <- overrides), for the prose
    merge_dict(c, study["recipe"], "recipe")
    merge_opts(c, opts)
    rows = cells(study, records)
    base = os.path.splitext(doc)[0]
    fig, csv = base + ".png", base + "_curves.csv"
    os.makedirs(os.path.dirname(os.path.abspath(doc)), exist_ok=True)
    plot(study, rows, fig)
    write_curves_csv(rows, csv)
    n_runs = len(grid_runs(study))
    done = [r for r in records.values() if any(r["name"] == g["name"] for g in grid_runs(study))]
    m = study["measure"]
    steps = max((r["steps"] for r in done), default=0)
    run_s = sum(r["wall_seconds"] for r in done)
    span_text = f", {wall / 60:.1f} min wall from the first run's start to the last one's end" if wall else ""
    text = f"""# Depth study: ResNet3D vs iResNet3D, at small scale

Generated by `{command}` on {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}; do not edit by hand.
{len(done)} of {n_runs} runs finished ({sum(r['status'] == 'diverged' for r in done)} diverged); {run_s / 60:.1f} min of
run time{span_text} on {jobs} parallel job(s).

The paper (Duta et al., ICPR 2020, Sec. 4, Figs. 4, 5 and 7) reports that the original ResNets converge more
slowly at the beginning of training as depth grows (not at all at 302 and 404 layers), while iResNets' early
convergence does not depend on depth. Here every network is trained {steps} steps with one recipe (below:
SGD, LR {c.SOLVER.BASE_LR:g} per {c.SOLVER.BASE_BATCH_SIZE} clips scaled to batches of {c.TRAIN.BATCH_SIZE},
x{c.SOLVER.GAMMA:g} at epochs {list(c.SOLVER.STEPS)} of {c.SOLVER.MAX_EPOCH}, momentum {c.SOLVER.MOMENTUM:g},
weight decay {c.SOLVER.WEIGHT_DECAY:g}, dropout {c.MODEL.DROPOUT_RATE:g}, width x{c.MODEL.WIDTH_MULT:g}, clips of
{c.DATA.NUM_FRAMES}x{c.DATA.TRAIN_CROP_SIZE}x{c.DATA.TRAIN_CROP_SIZE}), from {len(study['seeds'])} seed(s) per
cell; "a (b–c)" is the mean over seeds and their range. Training numbers are the clip-weighted mean over
the last {m['smooth_steps']} steps (dropout on); the peak loss is the highest of that mean over the run (a
start that first diverges shows there); steps to threshold is the first logged step at which that mean
reaches {m['threshold_top1']:g}% (one value per seed; ">N": not within N steps). Validation is video top-1 with
{c.TEST.NUM_ENSEMBLE_VIEWS} x {c.TEST.NUM_SPATIAL_CROPS} views on the val split, final weights.

{table(study, rows, c.TEST.NUM_ENSEMBLE_VIEWS * c.TEST.NUM_SPATIAL_CROPS)}

![training curves]({os.path.basename(fig)})

The figure's numbers (every logged window, before smoothing) are in
[{os.path.basename(csv)}]({os.path.basename(csv)}); each run's full record is in the study folder's `cache/`.

## What the numbers say

{chr(10).join(comparisons(study, rows)) or '- no depth with both ResNet3D and iResNet3D finished yet'}

By depth, within each family (means over seeds):

{chr(10).join(depth_trends(study, rows)) or '- no family with two depths finished yet'}

Differences whose seed ranges overlap are not resolved by this study. A small-scale run that shows no effect does
not refute the paper: its claim concerns full-width networks trained for many epochs on Kinetics-400 or
ImageNet. Testing it properly needs the full widths (or at least 1/2), real data (a Kinetics subset),
thousands of steps per run and 3 or more seeds: the same script with a GPU study config.

## Setup

- machine: {machine()}
- command: `{command}`
- study config (`{study['_path']}`):

```yaml
{study['_text'].strip()}
```
"""
    atomic_write_text(doc, text)
    return doc


def run_all(results, n: int, records: dict, study: dict, est: dict):
    """Collect finished runs as they come (one line each); a failed run is reported and not cached."""
    ran, failed = [], {}
    for i, (name, rec, err) in enumerate(results, 1):
        if err:
            failed[name] = err
            print(f"[{i}/{n}] {name}: FAILED {err} (see its console.log; it reruns next time)", flush=True)
            continue
        records[name] = rec
        ran.append(name)
        s = summarize(rec, study["measure"])
        print(f"[{i}/{n}] {name}: {rec['status']}, {rec['wall_seconds']:.0f} s (estimated "
              f"{est['per_arch'][rec['arch']]['run']:.0f}), final train loss {s['final_loss']:.3f}, val top-1 "
              f"{s['val_top1']:.1f}%, steps to threshold {s['steps_to_threshold']}", flush=True)
    return ran, failed


# ---------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", help="study config (YAML)")
    p.add_argument("--out", help="study folder (default: output/depth_study_<config name>)")
    p.add_argument("--doc", help="Markdown page to write, with its figure beside it (default: the study's 'doc')")
    p.add_argument("--jobs", type=int, help="runs in parallel (default: the study's 'jobs', else 1)")
    p.add_argument("--estimate-only", action="store_true", help="print the time estimate and stop")
    p.add_argument("--report-only", action="store_true", help="write the page from the cached runs; train nothing")
    p.add_argument("opts", nargs="*", help="KEY VALUE overrides of every run's vidrec config")
    a = p.parse_intermixed_args(argv)
    study = load_study(a.study)
    name = os.path.splitext(os.path.basename(a.study))[0]
    out = os.path.abspath(a.out or os.path.join("output", f"depth_study_{name}"))
    doc = a.doc or study.get("doc") or os.path.join(out, "depth_study.md")
    jobs = a.jobs or int(study.get("jobs", 1))
    args = [x for x in (argv if argv is not None else sys.argv[1:]) if x != "--report-only"]
    command = " ".join(["python", os.path.relpath(os.path.abspath(__file__))] + args)  # what reproduces the page
    runs = grid_runs(study)
    records, pending = {}, []
    for r in runs:
        rec = load_cached(out, r, fingerprint(study, r, a.opts))
        if rec is None:
            pending.append(r)
        else:
            records[r["name"]] = rec
    print(f"depth study {a.study}: {len(runs)} runs, {len(records)} cached, {len(pending)} to run; folder {out}",
          flush=True)
    data = prepare_data(study, out) if pending and not a.report_only else None
    ran, failed = [], {}
    if data is not None:
        est = estimate(study, data, pending, out, a.opts, jobs)
        print_estimate(est, pending, jobs)
        if a.estimate_only:
            return {"estimate": est, "pending": [r["name"] for r in pending]}
        order = sorted(pending, key=lambda r: -est["per_arch"][r["arch"]]["run"])  # longest first: even slots
        tasks = [(study, data, r, out, a.opts) for r in order]
        pool = None
        if jobs > 1:  # workers ignore Ctrl-C; this process stops them on Ctrl-C or kill (their runs resume next time)
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
            pool = multiprocessing.get_context("spawn").Pool(jobs, initializer=signal.signal,
                                                             initargs=(signal.SIGINT, signal.SIG_IGN))
        try:
            ran, failed = run_all(pool.imap_unordered(_worker, tasks) if pool else map(_worker, tasks),
                                  len(tasks), records, study, est)
        finally:
            if pool is not None:
                pool.terminate()
    write_doc(study, records, doc, command, study_span(out, records), jobs, a.opts)
    print(f"wrote {doc} ({len(records)} of {len(runs)} runs){f'; {len(failed)} failed' if failed else ''}")
    return {"ran": ran, "cached": sorted(set(records) - set(ran)), "failed": failed, "records": records, "doc": doc}


if __name__ == "__main__":
    sys.exit(1 if main().get("failed") else 0)
