"""The GPU benchmark's code runs (on the CPU, tiny shapes): it must work unchanged on a CUDA machine."""
import json
import math
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_training_benchmark_smoke_run_on_cpu(tmp_path, capsys):
    sys.path.insert(0, os.path.join(REPO, "benchmarks"))
    try:
        import gpu_training
    finally:
        sys.path.pop(0)
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
    # Without CUDA the real run says so and measures nothing.
    assert gpu_training.main([]) == {}
