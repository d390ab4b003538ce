#!/usr/bin/env python
"""Run every benchmark and write benchmarks/README.md with the machine, versions and tables.

  python benchmarks/run_all.py            # about 8 minutes on 2 CPU cores
  python benchmarks/run_all.py --quick    # fewer repeats, for a smoke check

Each benchmark reports ratios against a baseline measured in the same run;
absolute figures are context only (they move with the machine's load).
"""
import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

SECTIONS = [
    ("Model compute: vidrec vs pytorchvideo, and the inference fast paths", "model_speed.py", [], ["--repeats", "2"]),
    ("Data pipeline: loaders vs the raw decoder, 30-view decoding", "data_throughput.py", [], ["--repeats", "1"]),
    ("Prepared datasets: training on re-encoded copies vs the originals", "prepare_speed.py", [], ["--repeats", "1"]),
    ("PyAV clip reads: from the key frame before a clip vs a fixed 2 s margin", "pyav_seek.py", [], ["--repeats", "1"]),
    ("Model input on the CPU: uint8 clips to normalised float", "normalize_speed.py", [], ["--repeats", "2"]),
    ("End to end: demo-config training, and where the time goes", "end_to_end.py", [], ["--epochs", "1"]),
    ("GPU training step (fp32 / bf16 / channels_last_3d / compile)", "gpu_training.py", [], ["--steps", "3"]),
    ("GPU readiness: bf16/fp16 parity, cuDNN, training, loader, NVDEC decoding", "gpu_check.py", [],
     ["--steps", "3", "--compile-models"]),
]


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return "not installed"


def versions() -> str:
    import torch

    from vidrec.utils.env import cpu_name

    cpu = cpu_name()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return (f"- machine: {cpu}, {os.cpu_count()} CPU cores, GPU: {gpu}\n"
            f"- python {platform.python_version()}, torch {torch.__version__}, "
            + ", ".join(f"{m} {_version(m)}" for m in ("torchvision", "decord", "av", "torchcodec")))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=os.path.join(HERE, "README.md"))
    args = p.parse_args(argv)
    parts = [
        "# Benchmarks\n",
        "Produced by `python benchmarks/run_all.py` (each script also runs alone; see its `--help`). "
        "Every figure that matters is a ratio against a baseline measured in the same run, with medians over "
        "repeats; absolute numbers move with the machine's load.\n",
        f"Run {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}:\n\n{versions()}\n",
        "What is compared: vidrec's ResNet3D-50 against pytorchvideo's `create_resnet` building the same network "
        "(same weights, same outputs; pytorchvideo cannot build iResNet3D, so iResNet3D-50 is compared with its own "
        "eager baseline); the inference fast paths (BatchNorm folded into convs, channels_last_3d, torch.compile "
        "with frozen weights) and the channels_last_3d training step against eager, with the ceiling the "
        "machine's fastest measured kernel allows; the train and test loaders (including the uint8 -> float step) "
        "against the raw decoder fetching exactly the same frames (the train loader also with 2 clips per decode, the "
        "test loader shipping each video's decoded union and cutting the views where the model runs); one decode "
        "per 30-view video against decoding each view; training on `vidrec prepare` copies against the original "
        "720p/1080p sources; PyAV clip reads from the key frame before a clip against the earlier fixed 2 s margin; "
        "CPU model input (uint8 -> normalised float) against the earlier broadcast code; demo training at the "
        "default loader workers (auto) and with 0-2, a deeper prefetch, "
        "the other memory layout and the resize on the device, against the in-process loader. The GPU sections "
        "run only where CUDA is present.\n",
    ]
    for title, script, full, quick in SECTIONS:
        cmd = [sys.executable, os.path.join(HERE, script)] + (quick if args.quick else full)
        print(f"== {title}: {' '.join(cmd[1:])}", flush=True)
        t = time.time()
        res = subprocess.run(cmd, capture_output=True, text=True)
        out = res.stdout.strip() or "(no output)"
        if res.returncode:
            out += f"\n(exit code {res.returncode})\n" + res.stderr.strip()[-2000:]
        print(out, flush=True)
        shown = "python benchmarks/" + script + "".join(" " + a for a in (quick if args.quick else full))
        parts.append(f"## {title}\n\n`{shown}` ({time.time() - t:.0f} s)\n\n```\n{out}\n```\n")
    with open(args.out, "w") as f:
        f.write("\n".join(parts))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
