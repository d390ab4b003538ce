"""Predictor, tools/predict.py (JSON/CSV schema, bad input), annotation, lazy import."""
import csv
import json
import os
import subprocess

import numpy as np
import pytest
import torch

from tools import predict as predict_tool
from vidrec.inference.outputs import CSV_FIELDS, SCHEMA

from .conftest import PYTHON, REPO


def test_predictor_matches_model(predictor, gen):
    res = predictor.predict(gen["v50"], hop=10, topk=3, return_probs=True)
    assert res["ok"] and res["num_frames"] == 50 and res["fps"] == 25 and res["hop_frames"] == 10
    assert [(c["start_frame"], c["end_frame"]) for c in res["clips"]] == [(0, 7), (10, 17), (20, 27), (30, 37),
                                                                            (40, 47), (43, 50)]
    assert res["clips"][1]["start"] == pytest.approx(0.4) and res["clips"][-1]["end"] == pytest.approx(2.0)
    # Same clips through the model directly.
    clips = torch.stack([c for _, c in predictor.stream(gen["v50"], hop=10)])
    with torch.no_grad():
        ref = torch.softmax(predictor.model(predictor.prepare(clips)), 1).numpy()
    np.testing.assert_allclose(res["clip_probs"], ref, atol=1e-5)
    np.testing.assert_allclose(res["video_probs"], ref.mean(0), atol=1e-5)
    top = res["video"]["topk"]
    assert len(top) == 3 and top[0]["class"] == int(ref.mean(0).argmax()) and top[0]["label"] == str(top[0]["class"])
    assert not predictor.model.training


def test_fast_paths_match_plain_eager(tiny_weights, predictor, gen):
    """The CPU default (BN folded, channels_last_3d) and torch.compile give the plain eager model's outputs."""
    from vidrec.inference.predictor import Predictor

    plain = Predictor(*tiny_weights, device="cpu", fuse_bn=False, memory_format="contiguous")
    compiled = Predictor(*tiny_weights, device="cpu", compile=True)
    assert predictor.memory_format == torch.channels_last_3d and plain.memory_format == torch.contiguous_format
    conv = predictor.model.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last_3d) and not conv.is_contiguous()
    clips = torch.stack([c for _, c in predictor.stream(gen["v50"], hop=10)])
    ref = plain.forward(plain.prepare(clips), features=True)
    assert ref["probs"].std(0).max() > 1e-3  # clips give different outputs: the comparison can fail
    from torch._inductor.utils import run_and_get_code

    _, code = run_and_get_code(compiled.forward, compiled.prepare(clips), features=True)  # compiles
    assert any("_frozen_param" in c for c in code)  # weights frozen into the graph, not graph inputs
    for fast in (predictor, compiled):
        out = fast.forward(fast.prepare(clips), features=True)
        torch.testing.assert_close(out["probs"], ref["probs"], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(out["features"], ref["features"], atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match=r"\(N, 3, T, H, W\)"):  # the model's message, not a layout error
        predictor.forward(torch.zeros(3, 4, 32, 32))


def test_hop_seconds_and_multiview(predictor, gen):
    res = predictor.predict(gen["v50"], hop_seconds=0.4, multiview=True, cover_end=False)
    assert res["hop_frames"] is None and res["hop_seconds"] == 0.4 and res["num_clips"] == 5
    assert [c["start"] for c in res["clips"]] == pytest.approx([0.0, 0.4, 0.8, 1.2, 1.6])
    cfg = predictor.cfg
    assert res["video"]["method"] == f"{cfg.TEST.NUM_ENSEMBLE_VIEWS}x{cfg.TEST.NUM_SPATIAL_CROPS}-view"
    assert res["video"]["num_views"] == cfg.TEST.NUM_ENSEMBLE_VIEWS * cfg.TEST.NUM_SPATIAL_CROPS


def test_class_names(tiny_weights, tmp_path, gen):
    from vidrec.inference.predictor import Predictor

    names = tmp_path / "classes.txt"
    names.write_text("run\njump\nswim\nclimb\n")
    p = Predictor(tiny_weights[0], tiny_weights[1], opts=["MODEL.CLASS_NAMES", str(names)])
    res = p.predict(gen["short"])
    assert res["video"]["topk"][0]["label"] in {"run", "jump", "swim", "climb"}
    names.write_text("run\njump\n")
    with pytest.raises(ValueError, match="has 2 names but MODEL.NUM_CLASSES is 4"):
        Predictor(tiny_weights[0], tiny_weights[1], opts=["MODEL.CLASS_NAMES", str(names)])


def test_predict_tool_json_csv_and_bad_input(tiny_weights, gen, media, tmp_path, capsys):
    """Good, tiny (out-of-order pts), corrupt mid-stream (a warning, still a result) and broken inputs."""
    cfg, w = tiny_weights
    out, out_csv = tmp_path / "p.json", tmp_path / "p.csv"
    tiny, corrupt = media["tiny"].path, media["corrupt"].path
    videos = [gen["v30"], gen["short"], tiny, corrupt, gen["missing"], gen["zero"], gen["text"], gen["audio"]]
    rc = predict_tool.main(["--cfg", cfg, "--weights", w, *videos, "--hop", "8", "--topk", "2", "-o", str(out),
                            "--csv", str(out_csv), "--annotate", str(tmp_path / "ann"), "TEST.NUM_SPATIAL_CROPS", "1"])
    assert rc == 1  # some videos failed, the others still ran
    cap = capsys.readouterr()
    failed = [ln for ln in cap.err.splitlines() if ln.startswith("FAILED")]
    assert len(failed) == 4 and all(len(ln.split("\n")) == 1 for ln in failed)
    for name, why in (("missing", "file not found"), ("zero", "empty file"), ("text", "Invalid data found"),
                      ("audio", "no video stream")):
        assert any(gen[name] in ln and why in ln for ln in failed), (name, failed)
    assert any("WARNING" in ln and corrupt in ln for ln in cap.err.splitlines())
    assert "v30.mp4" in cap.out and "video:" in cap.out
    doc = json.loads(out.read_text())
    assert doc["schema"] == SCHEMA and doc["summary"] == {"videos": 8, "ok": 4, "failed": 4}
    assert doc["model"]["arch"] == "iresnet3d_18" and len(doc["model"]["config_hash"]) == 16
    assert doc["settings"]["hop_frames"] == 8
    ok = [v for v in doc["videos"] if v["ok"]]
    for v in ok:
        assert set(v) >= {"path", "fps", "num_frames", "duration", "clips", "video", "num_clips"}
        for c in v["clips"]:
            assert set(c) == {"index", "start_frame", "end_frame", "start", "end", "topk"}
            assert c["end"] > c["start"] >= 0 and len(c["topk"]) == 2
            assert set(c["topk"][0]) == {"class", "label", "prob"} and 0 <= c["topk"][0]["prob"] <= 1
        assert os.path.isfile(v["annotated"])
    short = next(v for v in ok if v["path"] == gen["short"])
    assert short["num_clips"] == 1  # shorter than a clip: still a prediction (looped indices)
    assert next(v for v in ok if v["path"] == tiny)["num_frames"] == media["tiny"].frames
    broken = next(v for v in ok if v["path"] == corrupt)
    assert 0 < broken["num_frames"] < media["corrupt"].frames and broken["num_clips"] >= 1  # the part that decodes
    bad = [v for v in doc["videos"] if not v["ok"]]
    assert all(set(v) == {"path", "ok", "error"} for v in bad)
    rows = list(csv.DictReader(out_csv.open()))
    assert list(rows[0]) == CSV_FIELDS
    v30 = [r for r in rows if r["path"] == gen["v30"]]
    assert len([r for r in v30 if r["level"] == "clip"]) == 2 * len(next(v for v in ok if v["path"] == gen["v30"])["clips"])
    assert len([r for r in v30 if r["level"] == "video"]) == 2
    # The annotated copy has every frame of the source.
    import av
    with av.open(str(tmp_path / "ann" / "v30.annotated.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 30


def test_mismatched_weights(tiny_weights, tmp_path, capsys):
    from vidrec.inference.predictor import Predictor

    cfg, w = tiny_weights
    with pytest.raises(ValueError, match=r"missing keys.*unexpected keys|shape mismatches"):
        Predictor(cfg, w, opts=["MODEL.ARCH", "resnet3d_18"])
    rc = predict_tool.main(["--cfg", cfg, "--weights", w, "x.mp4", "MODEL.NUM_CLASSES", "7"])
    err = capsys.readouterr().err
    assert rc == 2 and "shape mismatches: " in err and "fc.weight (4, 64) vs model (7, 64)" in err and err.startswith("error:")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert predict_tool.main(["--cfg", cfg, "--weights", str(junk), "x.mp4"]) == 2
    assert "not a readable PyTorch checkpoint" in capsys.readouterr().err


def test_import_vidrec_is_light():
    code = ("import sys, vidrec; assert 'torch' not in sys.modules, 'torch imported eagerly'; "
            "P = vidrec.Predictor; assert P.__name__ == 'Predictor'")
    subprocess.run([PYTHON, "-c", code], check=True, cwd=REPO)


def test_broken_stream_one_verdict_everywhere(predictor, vids, tmp_path, capsys):
    """A stream that breaks after 28 of 60 frames: every tool uses the same 28 frames, says so, and agrees
    on the duration (DATA.PARTIAL_VIDEO keep); with "fail" every tool rejects it."""
    from vidrec.data.datasets import build_dataset
    from vidrec.data.video_check import check_one
    from vidrec.inference.features import FeatureExtractor
    from vidrec.inference.predictor import Predictor

    path = vids["corrupt"]
    row = check_one(path)
    assert row["ok"] and row["status"] == "partial" and row["frames"] == 28
    res = predictor.predict(path, multiview=True)
    assert res["num_frames"] == 28 and "stops after 28 of 60" in res["warning"]
    assert res["duration"] == pytest.approx(row["duration"], abs=1e-3) == pytest.approx(28 / 25)
    ex = FeatureExtractor(predictor, str(tmp_path / "f"))
    s = ex.run([path])
    assert s["done"] == 1 and "stops after 28 of 60" in s["warnings"][0][1]
    cfg = predictor.cfg.clone()
    cfg.defrost()
    cfg.DATA.PATH_TO_DATA_DIR = os.path.dirname(path)
    (tmp_path / "l.txt").write_text(f"{os.path.basename(path)} 0\n")
    cfg.DATA.TEST_LIST = cfg.DATA.VAL_LIST = str(tmp_path / "l.txt")
    for views in (1, 10):  # 1-view validation and the 30-view test see the same video
        cfg.TEST.NUM_ENSEMBLE_VIEWS = views
        item = build_dataset(cfg, "test")[0]
        assert item["error"] == "" and "stops after 28 of 60" in item["warning"]

    cfg.DATA.PARTIAL_VIDEO = "fail"
    assert not check_one(path, partial="fail")["ok"]
    strict = Predictor(cfg, predictor.weights, device="cpu")
    assert next(strict.predict_many([path]))["ok"] is False
    assert "stops after 28 of 60" in build_dataset(cfg, "test")[0]["error"]


def test_predictor_takes_a_frozen_config(tiny_weights):
    from vidrec.config import load_config
    from vidrec.inference.predictor import Predictor

    cfg = load_config(tiny_weights[0])
    cfg.freeze()
    p = Predictor(cfg, tiny_weights[1], device="cpu")
    assert cfg.is_frozen() and p.cfg is not cfg and p.cfg.MODEL.INFLATE_FROM == ""
