"""The depth study's machinery (experiments/depth_study/) on a tiny grid: training through vidrec, the
per-run cache, resuming, the table, the figure and its numbers. Not a check of the study's outcome."""
import json
import runpy

import pytest

from tests.videos import REPO

STUDY = REPO / "experiments" / "depth_study"
RUNS = ["resnet3d_18-seed0", "iresnet3d_18-seed0", "resnet3d_34-seed0", "iresnet3d_34-seed0"]


@pytest.fixture(scope="module")
def ds():
    return runpy.run_path(str(STUDY / "depth_study.py"))


def test_tiny_study_caches_resumes_and_reports(ds, tmp_path):
    out, doc = tmp_path / "study", tmp_path / "docs" / "page.md"
    args = [str(STUDY / "tiny.yaml"), "--out", str(out), "--doc", str(doc)]
    first = ds["main"](args)
    assert sorted(first["ran"]) == sorted(RUNS) and not first["failed"]
    rec = json.loads((out / "cache" / "resnet3d_18-seed0.json").read_text())
    assert rec["status"] == "ok" and rec["steps"] == 8 and [w["step"] for w in rec["curve"]] == list(range(1, 9))
    assert rec["val"]["num_videos"] == 4 and rec["params"] > 0 and rec["seconds_per_step"] > 0
    assert (out / "runs" / "resnet3d_18-seed0" / "model").is_dir()  # an ordinary vidrec run folder

    text = doc.read_text()
    for depth, net in ((18, "ResNet3D"), (18, "iResNet3D"), (34, "ResNet3D"), (34, "iResNet3D")):
        assert f"| {depth} | {net} |" in text
    assert "![training curves](page.png)" in text and "tiny.yaml" in text and "## Setup" in text
    assert "- 34 layers, iResNet3D minus ResNet3D: final train loss" in text and "steps to threshold" in text
    assert "- ResNet3D at 18 / 34 layers: final train loss" in text and "--report-only" not in text
    assert (tmp_path / "docs" / "page.png").stat().st_size > 10_000
    csv = (tmp_path / "docs" / "page_curves.csv").read_text().splitlines()
    assert csv[0] == "family,depth,seed,step,clips,loss,top1" and len(csv) == 1 + 4 * 8

    stamps = {n: (out / "cache" / f"{n}.json").stat().st_mtime_ns for n in RUNS}
    again = ds["main"](args)  # everything cached: nothing trains
    assert again["ran"] == [] and sorted(again["cached"]) == sorted(RUNS)

    (out / "cache" / "iresnet3d_34-seed0.json").unlink()  # a lost result: only that run again
    third = ds["main"](args)
    assert third["ran"] == ["iresnet3d_34-seed0"]
    assert all((out / "cache" / f"{n}.json").stat().st_mtime_ns == stamps[n] for n in RUNS[:3])
    # its folder resumed from the final checkpoint (vidrec's auto-resume): the same records, no step redone
    assert third["records"]["iresnet3d_34-seed0"]["curve"] == first["records"]["iresnet3d_34-seed0"]["curve"]

    with pytest.raises(SystemExit, match="another recipe"):  # cached runs of another recipe are not mixed in
        ds["main"](args + ["SOLVER.BASE_LR", "0.2"])


def test_smoothing_and_steps_to_threshold(ds):
    curve = [{"step": s, "clips": 80, "loss": 2.0 - s / 100, "top1": a} for s, a in
             zip(range(10, 70, 10), (10, 40, 10, 40, 40, 40))]
    sm = ds["smoothed"](curve, 20)
    assert [round(a, 1) for _, _, a in sm] == [10, 25, 25, 25, 40, 40]
    s = ds["summarize"]({"curve": curve, "val": None, "status": "ok"}, {"smooth_steps": 20, "threshold_top1": 30})
    assert s["steps_to_threshold"] == 50 and s["final_top1"] == 40 and abs(s["final_loss"] - 1.45) < 1e-9
    assert abs(s["peak_loss"] - 1.9) < 1e-9  # the first window: the loss only falls afterwards
    assert ds["summarize"]({"curve": curve, "val": None, "status": "ok"},
                           {"smooth_steps": 20, "threshold_top1": 50})["steps_to_threshold"] is None


def test_depth_trends_report_each_family_by_depth(ds):
    def summ(loss, val, reached):
        return {"final_loss": loss, "final_top1": 10.0, "val_top1": val, "steps_to_threshold": reached,
                "diverged": False}

    rows = [{"family": "resnet3d", "depth": 50, "summaries": [summ(2.0, 30.0, 100), summ(2.2, 20.0, None)]},
            {"family": "resnet3d", "depth": 200, "summaries": [summ(2.6, 8.0, None), summ(2.8, float("nan"), None)]},
            {"family": "iresnet3d", "depth": 50, "summaries": [summ(1.9, 40.0, 90)]},
            {"family": "iresnet3d", "depth": 200, "summaries": []}]  # not run yet: one depth only, no line
    lines = ds["depth_trends"]({"grid": {"resnet3d": [50, 200], "iresnet3d": [50, 200]}}, rows)
    assert lines == ["- ResNet3D at 50 / 200 layers: final train loss 2.100 / 2.700; val top-1 25.0 / 8.0%; "
                     "seeds reaching the threshold 1/2, 0/2"]


def test_real_data_lists_make_the_run_configs(ds, tmp_path):
    study = ds["load_study"](str(STUDY / "cpu.yaml"))
    study["data"] = {"lists": {"root": "/data/k400", "train": "/l/train.csv", "val": "/l/val.csv", "num_classes": 400}}
    data = ds["prepare_data"](study, str(tmp_path))
    runs = ds["grid_runs"](study)
    assert len(runs) == 32 and {r["arch"] for r in runs} >= {"resnet3d_404", "iresnet3d_404", "preact_resnet3d_200"}
    cfg = ds["run_config"](study, data, runs[0], str(tmp_path), ["SOLVER.MAX_EPOCH", "3"])
    assert (cfg.DATA.TRAIN_LIST, cfg.MODEL.NUM_CLASSES, cfg.TEST.SPLIT, cfg.SOLVER.MAX_EPOCH) == \
        ("/l/train.csv", 400, "val", 3)
    assert (cfg.SOLVER.MOMENTUM, cfg.SOLVER.WEIGHT_DECAY, cfg.MODEL.DROPOUT_RATE) == (0.9, 1e-4, 0.5)
