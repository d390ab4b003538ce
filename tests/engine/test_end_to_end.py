"""Short end-to-end runs through the real entry points: train -> test -> re-score, and the demo."""
import importlib.util
import json
import os

import numpy as np
import pytest

from vidrec.engine.metrics import rescore_npz

from .conftest import REPO, tiny_opts


def _tool(name):
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", os.path.join(REPO, "tools", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_then_test_then_rescore(synthetic_root, tmp_path):
    out = str(tmp_path / "run")
    # The test list gets an undecodable file: it must be counted and listed, not crash the run.
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    lines = open(os.path.join(synthetic_root, "test.csv")).read().splitlines()
    test_list = tmp_path / "test_with_bad.csv"
    test_list.write_text("\n".join(lines + [f"{bad},1"]) + "\n")
    cfg = os.path.join(REPO, "configs", "tiny_cpu.yaml")
    opts = tiny_opts(synthetic_root, out, DATA__TEST_LIST=str(test_list), DATA__ALLOW_OUTSIDE_ROOT=True,
                     MODEL__CLASS_NAMES=os.path.join(synthetic_root, "classes.txt"),
                     TRAIN__CHECKPOINT_ITERS=2, TRAIN__KEEP_LAST=2, TEST__NUM_SPATIAL_CROPS=3)
    _tool("train_net").main(["--cfg", cfg] + opts)

    for f in ("config.yaml", "env.json", "model_complexity.json", "metrics.jsonl", "log.txt", "training_curves.png",
              "model_final.safetensors", "checkpoints/best.pt", "test_test/scores.npz", "test_test/metrics.json",
              "test_test/per_class.csv", "test_test/confusion.png"):
        assert os.path.isfile(os.path.join(out, f)), f
    assert sorted(os.listdir(os.path.join(out, "checkpoints"))) == ["best.pt", "ckpt_e0001_i000002.pt",
                                                                    "ckpt_e0002_i000000.pt"]
    cx = json.load(open(os.path.join(out, "model_complexity.json")))
    assert cx["params"] > 0 and cx.get("fvcore_gflops", 0) > 0
    records = [json.loads(ln) for ln in open(os.path.join(out, "metrics.jsonl"))]
    assert [r["epoch"] for r in records if r["type"] == "train_epoch"] == [1, 2]
    assert [r["epoch"] for r in records if r["type"] == "val"] == [1, 2]
    assert [r["split"] for r in records if r["type"] == "test"] == ["test"]

    m = json.load(open(os.path.join(out, "test_test", "metrics.json")))
    assert (m["num_videos"], m["num_failed"], m["num_total"]) == (12, 1, 13)
    assert m["failed_videos"][0]["path"] == str(bad)
    assert m["num_clips"] == 12 * 2 * 3  # 2 temporal x 3 spatial views per video
    z = np.load(os.path.join(out, "test_test", "scores.npz"))
    assert z["scores"].shape == (12, 4) and np.allclose(z["scores"].sum(1), 1.0, atol=1e-4)
    assert list(z["class_names"]) == [ln.strip() for ln in open(os.path.join(synthetic_root, "classes.txt"))]
    per_class = open(os.path.join(out, "test_test", "per_class.csv")).read().splitlines()
    assert per_class[0] == "class_id,class_name,videos,correct,accuracy" and len(per_class) == 5

    rescored = rescore_npz(os.path.join(out, "test_test", "scores.npz"))
    for k in ("top1", "top5", "mean_class_acc", "clip_top1", "num_videos", "num_failed"):
        assert rescored[k] == pytest.approx(m[k]), k

    # tools/test_net.py on the trained weights reproduces the numbers.
    os.rename(os.path.join(out, "test_test"), os.path.join(out, "test_from_training"))
    _tool("test_net").main(["--cfg", cfg] + opts)
    m2 = json.load(open(os.path.join(out, "test_test", "metrics.json")))
    for k in ("top1", "top5", "mean_class_acc", "clip_top1", "num_videos", "num_failed"):
        assert m2[k] == pytest.approx(m[k]), k


def test_demo_end_to_end_small(tmp_path, capsys):
    from vidrec.cli.demo import run_demo

    out = str(tmp_path / "demo")
    res = run_demo(["--per-class", "4", "2", "2", "--size", "32", "--frames", "16", "--clips", "2", "--top-k", "4",
                    "OUTPUT_DIR", out, "SOLVER.MAX_EPOCH", "1", "TRAIN.BATCH_SIZE", "8", "SOLVER.BASE_BATCH_SIZE", "8",
                    "MODEL.WIDTH_MULT", "0.125", "DATA.NUM_FRAMES", "4", "DATA.TRAIN_JITTER_SCALES", "[32, 36]",
                    "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_SHORT_SIDE", "32", "DATA.TEST_CROP_SIZE", "32",
                    "TEST.NUM_ENSEMBLE_VIEWS", "2", "TEST.NUM_SPATIAL_CROPS", "1", "DATA_LOADER.NUM_WORKERS", "0"])
    text = capsys.readouterr().out
    assert res["test"]["num_videos"] == 8
    assert "video top-1" in text and "target >= 90% video top-1" in text
    # A real sample video when one is at hand, else a held-out synthetic one: a prediction either way.
    assert res["prediction"] is not None and len(res["prediction"]["clips"]) == 2
    assert abs(sum(p for _, p in res["prediction"]["video"]) - 1.0) < 1e-3  # all 4 classes
    assert "prediction on" in text
    assert sorted(os.listdir(os.path.join(out, "model"))) == ["config.json", "model.safetensors"]


def test_demo_predicts_on_a_synthetic_video_without_samples(tmp_path, capsys, monkeypatch):
    """No real video beside the checkout (a user's clone): the demo still shows the prediction path."""
    from vidrec.cli import demo

    monkeypatch.setattr(demo, "default_video", lambda: "")
    res = demo.run_demo(["--per-class", "2", "1", "1", "--size", "32", "--frames", "8", "--clips", "1",
                         "OUTPUT_DIR", str(tmp_path / "d"), "SOLVER.MAX_EPOCH", "1", "TRAIN.BATCH_SIZE", "4",
                         "SOLVER.BASE_BATCH_SIZE", "4", "MODEL.WIDTH_MULT", "0.125", "DATA.NUM_FRAMES", "4",
                         "DATA.TRAIN_JITTER_SCALES", "[32, 36]", "DATA.TRAIN_CROP_SIZE", "32",
                         "DATA.TEST_SHORT_SIDE", "32", "DATA.TEST_CROP_SIZE", "32", "TEST.NUM_ENSEMBLE_VIEWS", "1",
                         "TEST.NUM_SPATIAL_CROPS", "1", "DATA_LOADER.NUM_WORKERS", "0", "DATA_LOADER.PERSISTENT_WORKERS",
                         "False", "TRAIN.EVAL_PERIOD", "1"])
    assert res["prediction"] is not None and "/test/" in res["prediction"]["path"]
    assert "prediction on" in capsys.readouterr().out
