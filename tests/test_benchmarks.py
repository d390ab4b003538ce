"""The GPU benchmarks' code runs (on the CPU, tiny shapes): it must work unchanged on a CUDA machine."""
import json
import math
import os
import shutil
import subprocess
import sys

import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the run without a CUDA device")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny shapes on a shared CPU: OpenMP threads waiting on each other made these runs several times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _bench(name):
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


def test_gpu_training_benchmark_smoke_run_on_cpu(tmp_path, capsys):
    gpu_training = _bench("gpu_training")
    out = tmp_path / "g.json"
    gpu_training.main(["--device", "cpu", "--models", "iresnet3d_18", "--batch", "2", "--frames", "2", "--size",
                       "32", "--steps", "1", "--warmup", "0", "--no-compile", "--json", str(out)])
    rows = json.loads(out.read_text())["models"]["iresnet3d_18"]
    assert set(rows) == {"fp32", "fp32 + channels_last_3d", "bf16 autocast", "bf16 + channels_last_3d"}
    for label, r in rows.items():
        assert "error" not in r, (label, r)
        assert r["clips_per_s"] > 0 and math.isfinite(r["ratio_vs_fp32"]) and r["fraction_of_bf16_peak"] > 0
    assert rows["fp32"]["ratio_vs_fp32"] == 1.0
    assert "fp32 + channels_last_3d" in capsys.readouterr().out


@no_cuda
def test_gpu_benchmarks_without_cuda_measure_nothing(capsys):
    assert _bench("gpu_training").main([]) == {}
    assert _bench("gpu_check").main([]) == {}
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and all("no CUDA device here; nothing measured" in line for line in out)


def _check_parity_and_training(res, flops_by):
    parity = res["parity"]
    for label, r in parity["models"]["iresnet3d_18"].items():
        assert r["status"] == "PASS", (label, r)
        for impl in ("cuDNN", "cuDNN off"):
            assert 0 <= r[impl]["logits_rel_l2"] < 5e-2 and math.isfinite(r[impl]["grad_rel_l2"]), (label, impl)
    # No TF32 on a CPU: the same kernels as the fp32 reference, the same numbers.
    assert parity["models"]["iresnet3d_18"]["fp32 with TF32"]["cuDNN"]["logits_rel_l2"] < 1e-6
    for kind, limit in (("bf16", 3e-2), ("fp16", 4e-3)):  # every distinct conv3d layer: output, both gradients
        errors = [e for layer in parity["layers"][kind].values() for e in layer.values()]
        assert len(parity["layers"][kind]) >= 10 and all(0 < e < limit for e in errors), kind
    train = res["training"]["models"]["iresnet3d_18"]
    assert set(train) == {"fp32", "bf16 autocast", "bf16 + channels_last_3d"}
    for label, r in train.items():
        assert r["clips_per_s"] > 0 and r["fraction_of_bf16_peak"] > 0 and r["flops_counted_by"].startswith(flops_by)
    assert res["failed"] == [] and "compile: no model to compile (--tiny)" in res["skipped"]


def test_gpu_check_smoke_run_on_cpu(tmp_path, capsys):
    out = tmp_path / "c.json"
    _bench("gpu_check").main(["--device", "cpu", "--tiny", "--json", str(out)])
    res = json.loads(out.read_text())
    assert {"env", "conv3d", "parity", "training", "loader", "decode"} <= set(res)
    _check_parity_and_training(res, "fvcore")
    assert res["loader"]["clips_per_s"] > 0 and res["loader"]["workers"] == 2
    if "skip" not in res["decode"]:  # TorchCodec with FFmpeg's libraries: CPU decoding twice, the same frames
        assert res["decode"]["mean_abs_diff"]["cpu (smoke run)"] == 0.0
    table = capsys.readouterr().out.split("== gpu_check summary")[1]
    for check in ("device", "conv3d 3x3x3 bf16", "parity iresnet3d_18 bf16 autocast", "parity iresnet3d_18 fp16",
                  "conv3d layers bf16 vs fp32", "conv3d layers fp16 vs fp32",
                  "train iresnet3d_18 bf16 + channels_last_3d", "train loader, 2 workers", "0 check(s) failed"):
        assert check in table, check


def test_gpu_check_needs_only_torch_for_models_and_parity(tmp_path):
    """As on the GPU machine: no PyAV, decord, fvcore or pytorchvideo. The loader says why it skips."""
    out = tmp_path / "c.json"
    code = ("import runpy, sys\n"
            "for m in ('av', 'decord', 'fvcore', 'pytorchvideo'):\n    sys.modules[m] = None\n"
            f"sys.argv = ['gpu_check.py', '--device', 'cpu', '--tiny', '--sections', 'env,parity,training,loader,"
            f"decode,compile', '--json', {str(out)!r}]\n"
            "runpy.run_path('benchmarks/gpu_check.py', run_name='__main__')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    _check_parity_and_training(res, "paper convention")
    skip = [s for s in res["skipped"] if s.startswith("loader:")]
    assert len(skip) == 1 and "needs av" in skip[0] and "--site DIR" in skip[0]
    assert "skipped loader: needs av" in r.stdout
    if "skip" not in res["decode"]:  # videos written by TorchCodec's encoder when PyAV is missing
        assert res["decode"]["video_writer"] == "TorchCodec" and res["decode"]["frames_per_s"]


def test_gpu_check_site_folder_of_wheels(tmp_path, monkeypatch):
    """--site DIR: wheels in DIR are unzipped and importable, in this process and (PYTHONPATH) its workers."""
    import zipfile

    gpu_check = _bench("gpu_check")
    (tmp_path / "wheels").mkdir()
    with zipfile.ZipFile(tmp_path / "wheels" / "probe_pkg-1.0-py3-none-any.whl", "w") as z:
        z.writestr("probe_pkg/__init__.py", "VALUE = 42\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "")
    assert "1 wheel(s) unzipped" in gpu_check.add_site(str(tmp_path / "wheels"))
    import probe_pkg

    site = os.path.dirname(os.path.dirname(probe_pkg.__file__))
    assert probe_pkg.VALUE == 42 and os.environ["PYTHONPATH"] == site
    sys.modules.pop("probe_pkg")
    shutil.rmtree(site)
