"""One-line errors and one exit-status rule for every command (README "Exit codes").

0 = everything done; 1 = finished, but some inputs failed (counted, listed); 2 = could not
run: one ``error:`` line, no traceback, unless ``--debug`` / ``VIDREC_DEBUG=1``.
"""
import errno
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vidrec.cli import COMMANDS, main as vidrec
from vidrec.cli.common import EXIT_CODES

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _quiet_engine():
    """One torch thread, and the 'vidrec' logger as it was (training points it at the captured stdout)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    log = logging.getLogger("vidrec")
    state = (list(log.handlers), log.propagate, log.level)
    yield
    torch.set_num_threads(threads)
    for h in log.handlers:
        if h not in state[0]:
            h.close()
    log.handlers[:], log.propagate, log.level = state


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A 4-class synthetic set (2 train, 1 val, 1 test video per class), weights and bad files."""
    from vidrec.config import load_config
    from vidrec.data.synthetic import make_synthetic_dataset
    from vidrec.models import build_model

    d = tmp_path_factory.mktemp("errors")
    root = d / "syn"
    make_synthetic_dataset(root, num_classes=4, videos_per_class=(2, 1, 1), size=(32, 32), num_frames=16, seed=0)
    test_lines = (root / "test.csv").read_text().splitlines()  # header + 4 videos
    train_lines = (root / "train.csv").read_text().splitlines()
    (d / "bad_label.csv").write_text("\n".join(train_lines[:3] + [train_lines[3].rsplit(",", 1)[0] + ",9"]) + "\n")
    # 2 of 4 training videos missing: half the loads fail, far above DATA.MAX_FAIL_RATE 0.1.
    (d / "half_missing.csv").write_text("\n".join(train_lines[:3] + ["gone/a.mp4,0", "gone/b.mp4,1"]) + "\n")
    (d / "test_one_missing.csv").write_text("\n".join(test_lines[:3] + ["gone/c.mp4,2"]) + "\n")
    (d / "test_good.csv").write_text("\n".join(test_lines[:3]) + "\n")
    torch.save({"model": {"w": torch.ones(2)}, "extra": _Evil(d / "pwned")}, d / "evil.pt")
    (d / "junk.pt").write_bytes(os.urandom(4096))
    (d / "clip.bin").write_bytes(bytes(range(256)) * 8)  # binary, and not a video by its name
    (d / "zero.mp4").write_bytes(b"")
    cfg = load_config("tiny_cpu")
    torch.manual_seed(0)
    torch.save(build_model(cfg).state_dict(), d / "w.pt")
    return d


def _base(d, out, **over):
    root = d / "syn"
    opts = {"DATA.PATH_TO_DATA_DIR": root, "DATA.TRAIN_LIST": root / "train.csv", "DATA.VAL_LIST": "",
            "DATA.TEST_LIST": d / "test_good.csv", "OUTPUT_DIR": d / out, "SOLVER.MAX_EPOCH": 1,
            "SOLVER.STEPS": "[]", "TRAIN.BATCH_SIZE": 2, "SOLVER.BASE_BATCH_SIZE": 2, "TEST.BATCH_SIZE": 2,
            "TEST.NUM_ENSEMBLE_VIEWS": 1, "TEST.NUM_SPATIAL_CROPS": 1, "LOG_PERIOD": 100, "NUM_THREADS": 1}
    opts.update(over)
    return ["--cfg", "tiny_cpu"] + [str(x) for kv in opts.items() for x in kv]


def _disk_full(monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)  # every atomic write fsyncs its temp file


def _exc(name):
    from vidrec.data.datasets import FailRateError
    from vidrec.data.lists import ListError
    from vidrec.models.weights import CheckpointError, UnsafeCheckpointError

    return {"unsafe": UnsafeCheckpointError, "checkpoint": CheckpointError, "list": ListError,
            "rate": FailRateError, "os": OSError}[name]


# case -> (argv from the fixture folder, expected text of the error line, exception seen with --debug, setup)
CASES = {
    "test-unsafe-checkpoint": (lambda d: ["test", *_base(d, "o1", **{"TEST.CHECKPOINT_FILE": d / "evil.pt"})],
                               "Refusing to load", "unsafe", None),
    "test-junk-checkpoint": (lambda d: ["test", *_base(d, "o2", **{"TEST.CHECKPOINT_FILE": d / "junk.pt"})],
                             "not a readable PyTorch checkpoint", "checkpoint", None),
    "train-unsafe-inflate": (lambda d: ["train", *_base(d, "o3", **{"MODEL.INFLATE_FROM": d / "evil.pt"})],
                             "Refusing to load", "unsafe", None),
    "train-junk-inflate": (lambda d: ["train", *_base(d, "o4", **{"MODEL.INFLATE_FROM": d / "junk.pt"})],
                           "not a readable PyTorch checkpoint", "checkpoint", None),
    "train-disk-full": (lambda d: ["train", *_base(d, "o5")], "No space left on device", "os", _disk_full),
    "test-disk-full": (lambda d: ["test", *_base(d, "o6", **{"TEST.CHECKPOINT_FILE": d / "w.pt"})],
                       "No space left on device", "os", _disk_full),
    "train-missing-list": (lambda d: ["train", *_base(d, "o7", **{"DATA.TRAIN_LIST": d / "nope.csv"})],
                           "DATA.TRAIN_LIST list file not found", "list", None),
    "test-missing-list": (lambda d: ["test", *_base(d, "o8", **{"TEST.CHECKPOINT_FILE": d / "w.pt",
                                                                "DATA.TEST_LIST": d / "nope.csv"})],
                          "DATA.TEST_LIST list file not found", "list", None),
    "train-label-out-of-range": (lambda d: ["train", *_base(d, "o9", **{"DATA.TRAIN_LIST": d / "bad_label.csv"})],
                                 "labels outside 0..3", "list", None),
    "train-max-fail-rate": (lambda d: ["train", *_base(d, "o10", **{"DATA.TRAIN_LIST": d / "half_missing.csv",
                                                                    "DATA.MAX_FAIL_RATE": 0.1})],
                            "more than DATA.MAX_FAIL_RATE", "rate", None),
    "check-videos-not-a-list": (lambda d: ["check-videos", str(d / "clip.bin"), "--workers", "1",
                                           "--report", str(d / "r.csv"), "--quarantine", str(d / "q.txt")],
                                "not a text list", "list", None),
    "check-videos-missing-path": (lambda d: ["check-videos", str(d / "no_such_folder"), "--workers", "1",
                                             "--report", str(d / "r.csv"), "--quarantine", str(d / "q.txt")],
                                  "not found", "list", None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_expected_failures_are_one_error_line(case, env, capsys, monkeypatch):
    argv_of, text, exc, setup = CASES[case]
    monkeypatch.delenv("VIDREC_DEBUG", raising=False)
    if setup:
        setup(monkeypatch)
    argv = argv_of(env)
    rc = vidrec(argv)
    out, err = capsys.readouterr()
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert rc == 2, (rc, out[-2000:], err[-2000:])
    assert len(errors) == 1 and text in errors[0], err[-2000:]
    assert "Traceback" not in err + out
    assert not (env / "pwned").exists()
    # --debug (anywhere, or before the command) or VIDREC_DEBUG=1: the exception itself, i.e. its traceback.
    i = list(CASES).index(case) % 3
    if i == 0:
        debug_argv = argv + ["--debug"]
    elif i == 1:
        debug_argv = ["--debug"] + argv
    else:
        debug_argv = argv
        monkeypatch.setenv("VIDREC_DEBUG", "1")
    with pytest.raises(_exc(exc)):
        vidrec(debug_argv)


def test_debug_prints_the_traceback(env):
    """Outside pytest: the traceback with --debug, one line without."""
    cmd = [sys.executable, "-m", "vidrec", "check-videos", str(env / "no_such_folder")]
    py_env = dict(os.environ, PYTHONPATH=str(REPO))
    py_env.pop("VIDREC_DEBUG", None)
    plain = subprocess.run(cmd, capture_output=True, text=True, env=py_env, cwd=env)
    debug = subprocess.run(cmd + ["--debug"], capture_output=True, text=True, env=py_env, cwd=env)
    assert plain.returncode == 2 and plain.stderr.startswith("error: not found: ") and plain.stderr.count("\n") == 1
    assert debug.returncode != 0 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("vidrec.data.lists.ListError: not found: ")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_help_states_the_exit_codes_and_debug(name, capsys):
    with pytest.raises(SystemExit) as e:
        vidrec([name, "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and EXIT_CODES in out and "--debug" in out


def test_test_exit_status_counts_unreadable_videos(env, capsys):
    """test: 0 when every video was scored, 1 (and a line saying so) when one could not be read."""
    good = _base(env, "t_good", **{"TEST.CHECKPOINT_FILE": env / "w.pt"})
    assert vidrec(["test", *good]) == 0
    assert "could not be read" not in capsys.readouterr().out
    bad = _base(env, "t_bad", **{"TEST.CHECKPOINT_FILE": env / "w.pt", "DATA.TEST_LIST": env / "test_one_missing.csv"})
    assert vidrec(["test", *bad]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("finished, but some videos could not be read: 1 of 3 test videos (named in the log")
    # Re-scoring the saved scores gives the same answer.
    assert vidrec(["test", "--rescore", str(env / "t_bad" / "test_test" / "scores.npz")]) == 1
    assert "1 of 3 test videos" in capsys.readouterr().out


def test_train_exit_status_counts_unreadable_videos(env, capsys):
    argv = _base(env, "tr_bad", **{"DATA.TEST_LIST": env / "test_one_missing.csv"})
    assert vidrec(["train", *argv]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("finished, but some videos could not be read: 1 of 3 test videos")
    assert str(env / "tr_bad" / "test_test" / "metrics.json") in last


def test_extract_names_each_failure_once(env, capsys, caplog):
    """One FAILED line per unreadable video (not one from the log and one from the CLI), "1 video"."""
    logging.getLogger("vidrec").propagate = True  # let caplog see what vidrec logs
    argv = ["extract", "--cfg", "tiny_cpu", "--weights", str(env / "w.pt"), "--out", str(env / "feats"),
            str(env / "zero.mp4")]
    with caplog.at_level(logging.INFO):
        assert vidrec(argv) == 1
    out, err = capsys.readouterr()
    assert (err + out + caplog.text).count("FAILED") == 1
    assert f"FAILED {env / 'zero.mp4'}: empty file" in err
    assert "shard 0/1: 1 video: 0 extracted, 0 already done, 1 failed" in out


def test_counts_are_singular_for_one():
    from vidrec.data.video_check import summary_line
    from vidrec.engine.metrics import format_metrics
    from vidrec.inference.outputs import format_video
    from vidrec.utils.text import plural

    assert (plural(1, "video"), plural(0, "video"), plural(2, "class", "classes")) == ("1 video", "0 videos",
                                                                                      "2 classes")
    m = {"num_videos": 1, "num_total": 1, "num_failed": 0, "top1": 100.0, "top5": 100.0, "mean_class_acc": 100.0,
         "clip_top1": 100.0, "num_clips": 1}
    assert format_metrics(m).startswith("evaluated 1 of 1 video (0 failed)") and "(1 clip)" in format_metrics(m)
    row = {"path": "a.mp4", "ok": True, "status": "ok", "reason": ""}
    assert summary_line([row]).startswith("checked 1 video: 1 ok, 0 failed")
    v = {"ok": True, "path": "a.mp4", "num_frames": 1, "duration": 0.04, "num_clips": 1,
         "video": {"method": "mean", "topk": [{"label": "x", "prob": 1.0}]}, "clips": []}
    assert format_video(v).startswith("a.mp4  (1 frame, 0.04s, 1 clip, mean)")
