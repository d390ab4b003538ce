"""``pip install`` gives a working package: the wheel holds the configs, class lists and the
``vidrec`` command, and runs from a directory outside the checkout.

The wheel is built without build isolation (setuptools from the test environment,
no download) from a copy of the source, and installed without dependencies into
a temporary prefix that is put first on PYTHONPATH; the test environment
provides torch & co.
"""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ANYWHERE = shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", ".pytest_cache")
TOP_LEVEL = {".venv", "output", "demo_output", "build", "dist", "runs"}  # a checkout's local run folders


def skip(folder, names):
    top = {n for n in names if n in TOP_LEVEL} if Path(folder) == REPO else set()
    return set(ANYWHERE(folder, names)) | top


def run(cmd, cwd, env, timeout=300):
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(prefix with the installed wheel, wheel path)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(REPO, src, symlinks=True, ignore=skip)
    env = dict(os.environ, PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
         str(src)], tmp, env)
    wheel = next((tmp / "dist").glob("vidrec-*.whl"))
    prefix = tmp / "site"
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(prefix), str(wheel)], tmp, env)
    return prefix, wheel


def user_env(prefix):
    env = dict(os.environ, PYTHONPATH=str(prefix))
    env.pop("VIDREC_SAMPLE_VIDEOS", None)
    return env


def test_wheel_contents(installed):
    names = set(zipfile.ZipFile(installed[1]).namelist())
    for required in ("vidrec/configs/kinetics_iresnet3d50.yaml", "vidrec/configs/ssv2_iresnet3d50.yaml",
                     "vidrec/configs/tiny_cpu.yaml", "vidrec/configs/demo_synthetic.yaml",
                     "vidrec/data_lists/kinetics400_classes.txt", "vidrec/data_lists/ssv2_classes.txt",
                     "vidrec/cli/__init__.py", "vidrec/__main__.py", "vidrec/models/pretrained.py"):
        assert required in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "vidrec = vidrec.cli:main" in zipfile.ZipFile(installed[1]).read(entry).decode()
    assert not any(n.startswith(("tests/", "tools/")) for n in names)


def test_installed_command_runs_outside_the_checkout(installed, tmp_path):
    prefix, _ = installed
    env, exe = user_env(prefix), [str(prefix / "bin" / "vidrec")]
    where = run([sys.executable, "-c", "import vidrec, vidrec.shipped as s; print(vidrec.__file__); "
                 "print(s.CONFIG_DIR)"], tmp_path, env).split()
    assert all(str(prefix) in w for w in where), where  # the installed copy, not the checkout

    assert "kinetics_iresnet3d50" in run(exe + ["configs"], tmp_path, env)
    assert "46,999,760" in run(exe + ["complexity", "--cfg", "kinetics_iresnet3d50"], tmp_path, env)
    assert "commands:" in run([sys.executable, "-m", "vidrec", "--help"], tmp_path, env)

    # A tiny training and a prediction on generated videos, with the model folder training writes.
    run([sys.executable, "-m", "vidrec.data.synthetic", "syn", "--num-classes", "2", "--per-class", "4", "1", "1",
         "--size", "32", "32", "--frames", "8"], tmp_path, env)
    run(exe + ["train", "--cfg", "tiny_cpu", "DATA.PATH_TO_DATA_DIR", "syn", "DATA.TRAIN_LIST", "syn/train.csv",
               "DATA.VAL_LIST", "syn/val.csv", "DATA.TEST_LIST", "syn/test.csv", "MODEL.NUM_CLASSES", "2",
               "SOLVER.MAX_EPOCH", "1", "TRAIN.BATCH_SIZE", "4", "SOLVER.BASE_BATCH_SIZE", "4",
               "TEST.ENABLE", "False", "OUTPUT_DIR", "run"], tmp_path, env)
    assert sorted(os.listdir(tmp_path / "run" / "model")) == ["config.json", "model.safetensors"]
    video = next((tmp_path / "syn" / "test").rglob("*.mp4"))
    out = run(exe + ["predict", "--model", "run/model", str(video), "-o", "p.json"], tmp_path, env)
    assert "1 ok, 0 failed" in out and ("moving left" in out or "moving right" in out)
