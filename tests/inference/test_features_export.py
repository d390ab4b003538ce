"""Feature extraction (parity, resumption, sharding, failures) and model export parity."""
import json
import os

import numpy as np
import pytest
import torch

from tools import export as export_tool
from tools import extract_features as extract_tool
from vidrec.inference.features import FeatureExtractor, parse_shard, shard_paths, video_keys


def test_features_equal_model_pooled_features(predictor, gen, tmp_path):
    ex = FeatureExtractor(predictor, str(tmp_path), stride=6, dtype="float32", stages=True)
    emb, stages, meta = ex.extract(gen["v50"])
    clips = torch.stack([c for _, c in predictor.stream(gen["v50"], hop=6, cover_end=False)])
    with torch.no_grad():
        x = predictor.prepare(clips)
        ref = predictor.model.forward_head(predictor.model.forward_features(x), pre_logits=True).numpy()
    assert emb.shape == (8, predictor.embed_dim) == ref.shape and emb.dtype == np.float32
    np.testing.assert_allclose(emb, ref, atol=1e-5)
    assert [s.shape[:2] for s in stages] == [(8, 8), (8, 16), (8, 32), (8, 64)]
    np.testing.assert_allclose(stages[-1].mean(-1), emb, atol=1e-5)  # stage 4 averaged over time = embedding
    assert meta["clips"]["start_frame"] == [0, 6, 12, 18, 24, 30, 36, 42] and meta["stride_frames"] == 6
    assert meta["clips"]["start"][1] == pytest.approx(0.24)


def test_extract_tool_resume_shard_failures(tiny_weights, gen, media, tmp_path, capsys):
    cfg, w = tiny_weights
    out = tmp_path / "feats"
    vids = [gen["v50"], gen["v30"], gen["short"], media["tiny"].path, gen["text"]]  # tiny: 4 frames, B-frames
    base = ["--cfg", cfg, "--weights", w, *vids, "--out", str(out), "--stride-seconds", "0.2"]
    # Two shards (as two processes would run them), then a rerun that finds everything done.
    assert extract_tool.main(base + ["--shard", "0/2"]) == 1          # shard 0 owns the broken text.mp4
    assert extract_tool.main(base + ["--shard", "1/2"]) == 0
    err = capsys.readouterr().err
    assert f"FAILED {gen['text']}:" in err
    keys = video_keys(vids)
    assert keys[gen["short"]] == "short"
    tiny = np.load(out / f"{keys[media['tiny'].path]}.npy")
    assert tiny.shape == (1, 64) and np.isfinite(tiny).all()  # shorter than a clip: one looped clip
    index = json.loads((out / "index.json").read_text())
    assert sorted(index["videos"]) == sorted(k for p, k in keys.items() if p != gen["text"])
    v50 = index["videos"]["v50"]
    assert v50["stride_frames"] is None and v50["stride_seconds"] == 0.2 and v50["fps"] == 25 and v50["shape"] == [9, 64] and v50["dtype"] == "float16"
    assert index["model"]["config_hash"] == v50["settings"]["config_hash"]
    arr = np.load(out / "v50.npy")
    assert arr.shape == (9, 64) and arr.dtype == np.float16
    fails = (out / "failures.shard0of2.jsonl").read_text().splitlines()
    assert len(fails) == 1 and json.loads(fails[0])["path"] == gen["text"]
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("*.npy")}
    os.unlink(out / "v30.json")  # as if the run had been killed before finishing v30
    assert extract_tool.main(base[:-1] + ["0.2"]) == 1  # text.mp4 still fails
    summary = capsys.readouterr().out
    assert "1 extracted, 3 already done, 1 failed" in summary
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items() if p.name != "v30.npy")
    # Other settings (stride) do not count as done.
    assert extract_tool.main(base[:-2] + ["--stride", "4", gen["v30"]]) == 1
    assert "4 extracted, 0 already done, 1 failed" in capsys.readouterr().out
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files


def test_shard_helpers(monkeypatch):
    paths = [f"v{i}.mp4" for i in range(7)]
    parts = [shard_paths(paths, i, 3) for i in range(3)]
    assert sorted(sum(parts, [])) == sorted(paths) and not set(parts[0]) & set(parts[1])
    assert parse_shard("1/3") == (1, 3)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert parse_shard(None) == (2, 4)
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    assert video_keys(["a/x.mp4", "b/x.mp4", "c/y.mp4"])["c/y.mp4"] == "y"
    assert len(set(video_keys(["a/x.mp4", "b/x.mp4"]).values())) == 2


def test_export_torchscript_parity(tiny_weights, media, tmp_path, capsys):
    """TorchScript export, parity checked on clips of a real encoded video (generated; the real demo.mp4 extra)."""
    cfg, w = tiny_weights
    out = tmp_path / "m.ts.pt"
    assert export_tool.main(["--cfg", cfg, "--weights", w, "--out", str(out), "--video",
                             media["long"].path, "--output", "features"]) == 0
    doc = json.loads((tmp_path / "m.ts.pt.json").read_text())
    assert doc["parity"]["ok"] and doc["input"]["shape"] == ["N", 3, 4, 32, 32]
    m = torch.jit.load(str(out))
    assert m(torch.zeros(3, 3, 4, 32, 32)).shape == (3, 64)


def test_export_onnx_parity(tiny_weights, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    cfg, w = tiny_weights
    out = tmp_path / "m.onnx"
    assert export_tool.main(["--cfg", cfg, "--weights", w, "--out", str(out)]) == 0
    doc = json.loads((tmp_path / "m.onnx.json").read_text())
    assert doc["format"] == "onnx" and doc["parity"]["ok"] and doc["parity"]["max_abs_diff"] < 1e-4
    assert [c["batch"] for c in doc["parity"]["checks"]] == [2, 1]  # dynamic batch


def test_export_parity_failure_is_reported(tiny_weights, tmp_path, monkeypatch, capsys):
    from vidrec.inference import export as ex

    real = ex.run_exported
    monkeypatch.setattr(ex, "run_exported", lambda path, x: real(path, x) + 0.01)
    cfg, w = tiny_weights
    assert export_tool.main(["--cfg", cfg, "--weights", w, "--out", str(tmp_path / "m.pt")]) == 1
    assert "parity check failed" in capsys.readouterr().err


def _meta(out, key):
    return json.loads((out / f"{key}.json").read_text())


def test_results_are_keyed_on_the_source_and_names_are_stable(predictor, tmp_path):
    """Same-named videos never share or steal a result; adding one never renames or recomputes the others;
    index.json lists exactly the stored results that match their sources (the rest under "stale")."""
    from tests.videos import moving, write_video
    from vidrec.inference.features import source_identity

    saved_umask = os.umask(0o022)
    try:
        for sub in "abc":
            (tmp_path / sub).mkdir()
        a = write_video(tmp_path / "a" / "test.avi", n=12, codec="mpeg4", values=moving)
        b = write_video(tmp_path / "b" / "test.mp4", n=20, values=moving)
        c = write_video(tmp_path / "c" / "test.mp4", n=12, values=lambda i: 255 - moving(i))
        out = tmp_path / "feats"
        ex = FeatureExtractor(predictor, str(out), stride=4, dtype="float32")
        assert ex.run([a])["done"] == 1 and _meta(out, "test")["source"] == source_identity(a)
        s = ex.run([b])  # same name, another video: not "already done"
        assert (s["done"], s["skipped"]) == (1, 0)
        kb = video_keys([b], str(out))[b]
        assert kb.startswith("test-") and _meta(out, kb)["source"]["path"] == os.path.abspath(b)
        assert _meta(out, "test")["source"]["path"] == os.path.abspath(a)  # a keeps its name and its result
        # Adding a third test.mp4 to the processed inputs: nothing renamed or recomputed, 3 videos for 3 inputs.
        before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.npy")}
        s = ex.run([a, b, c])
        assert (s["done"], s["skipped"]) == (1, 2)
        assert all((out / n).stat().st_mtime_ns == t for n, t in before.items())
        keys = video_keys([a, b, c], str(out))
        assert keys[a] == "test" and keys[b] == kb and len(set(keys.values())) == 3
        index = json.loads((out / "index.json").read_text())
        assert index["num_videos"] == 3 and index["stale"] == {}
        assert sorted(v["source"]["path"] for v in index["videos"].values()) == sorted(
            os.path.abspath(p) for p in (a, b, c))
        for f in [out / "index.json", *out.glob("test*")]:
            assert (f.stat().st_mode & 0o777) == 0o644, f  # umask 022 -> 0644 (was 0600)
        # A source that changes is stale until recomputed (same name); a deleted one stays stale.
        write_video(b, n=28, values=moving)
        os.unlink(c)
        ex.write_index()
        index = json.loads((out / "index.json").read_text())
        assert sorted(index["videos"]) == ["test"] and sorted(index["stale"]) == sorted([kb, keys[c]])
        assert "changed" in index["stale"][kb]["reason"] and "missing" in index["stale"][keys[c]]["reason"]
        s = ex.run([a, b])
        assert (s["done"], s["skipped"]) == (1, 1) and np.load(out / f"{kb}.npy").shape[0] == 6  # 28 frames now, not 20
        assert sorted(json.loads((out / "index.json").read_text())["videos"]) == sorted(["test", kb])
    finally:
        os.umask(saved_umask)
    assert video_keys(["x/index.mp4"])["x/index.mp4"] != "index"  # never the index file's name


def test_extractor_start_removes_stale_temp_files(predictor, tmp_path):
    out = tmp_path / "feats"
    (out / "sub").mkdir(parents=True)
    for f in (out / ".v50.npy.k2j4h5g6.tmp", out / "sub" / ".x.json.abcdefgh.tmp"):
        f.write_bytes(b"half")  # left by a killed write (no writer holds its lock)
    (out / "v50.npy").write_bytes(b"kept")
    FeatureExtractor(predictor, str(out))
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["v50.npy"]
