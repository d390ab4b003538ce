"""One run per OUTPUT_DIR: a lock against a second training, no new run mixed into an old one, and a
resumed config compared with the checkpoint's (refused when the weights would mean something else),
all before any of the folder's files is overwritten."""
import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from vidrec.engine import distributed as du
from vidrec.engine.run_folder import RunFolderError, RunLock, compare_config

from .conftest import PYTHON, REPO, python_env, tiny_cfg, tiny_opts

ONE_EPOCH = dict(SOLVER__MAX_EPOCH=1, TRAIN__EVAL_PERIOD=0, TEST__ENABLE=False)
RUN_INFO = ("config.yaml", "env.json", "model_complexity.json")


def _trainer(root, out, **over):
    from vidrec.engine.trainer import Trainer

    cfg = tiny_cfg(root, out, **dict(ONE_EPOCH, **over))
    return Trainer(cfg, du.init_distributed(cfg))


@pytest.fixture(scope="module")
def finished(synthetic_root, tmp_path_factory):
    """A finished 1-epoch run; each test works on a copy."""
    from vidrec.engine import train

    out = str(tmp_path_factory.mktemp("runs") / "finished")
    train(tiny_cfg(synthetic_root, out, **ONE_EPOCH))
    return out


def _copy(finished, tmp_path):
    out = str(tmp_path / "run")
    shutil.copytree(finished, out)
    return out


def _snapshot(out):
    """Every file of the folder with its bytes (not log.txt: a refused start may log why; not .lock)."""
    snap = {}
    for dp, _, names in os.walk(out):
        for n in names:
            p = os.path.join(dp, n)
            if n not in ("log.txt", ".lock"):
                snap[os.path.relpath(p, out)] = open(p, "rb").read()
    return snap


def test_second_training_into_a_locked_folder_is_refused_and_a_killed_holder_frees_it(synthetic_root, tmp_path,
                                                                                      capsys):
    """Item 5: the holder is another process; SIGKILLed, its lock must not block the next run."""
    out = str(tmp_path / "run")
    code = ("import sys, time; from vidrec.engine.run_folder import RunLock; lock = RunLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); time.sleep(120)")
    holder = subprocess.Popen([PYTHON, "-c", code, out], stdout=subprocess.PIPE, text=True, env=python_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderError) as e:
            _trainer(synthetic_root, out)
        msg = str(e.value)
        assert f"pid {holder.pid} on host {socket.gethostname()}" in msg and "running since" in msg
        assert "in use by another training" in msg and "\n" not in msg
        assert sorted(os.listdir(out)) == [".lock"]  # refused before writing anything
        # The command line: one error line, non-zero exit.
        from vidrec.cli.train_net import main

        rc = main(["--cfg", os.path.join(REPO, "configs", "tiny_cpu.yaml")] + tiny_opts(synthetic_root, out))
        err = capsys.readouterr().err.strip().splitlines()
        assert rc != 0 and len(err) == 1 and err[0].startswith("error: ") and f"pid {holder.pid}" in err[0]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    t = _trainer(synthetic_root, out)  # the stale lock file (naming a dead pid) does not block
    t.close()


def test_forked_children_do_not_keep_the_lock(tmp_path):
    """A data-loader worker forked from the trainer must not hold the lock after the trainer dies."""
    lock = RunLock(str(tmp_path)).acquire()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the "worker": outlives its parent's lock
        os.write(ready_w, b"1")  # (running: the at-fork hooks are done)
        time.sleep(30)
        os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"1"
        lock.release()  # what the kernel does when the trainer is SIGKILLed
        RunLock(str(tmp_path)).acquire().release()
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(ready_w)


def test_lock_is_released_when_training_ends_or_fails_to_start(synthetic_root, finished, tmp_path):
    out = _copy(finished, tmp_path)
    t = _trainer(synthetic_root, out)
    with pytest.raises(RunFolderError, match=r"\(this process\)"):
        _trainer(synthetic_root, out)
    t.fit()  # finished already: exports again and returns, releasing the lock
    with pytest.raises(RunFolderError):
        _trainer(synthetic_root, out, MODEL__NUM_CLASSES=5)  # a refused start...
    _trainer(synthetic_root, out).close()  # ...released it too


def test_fresh_start_into_a_used_folder_is_refused(synthetic_root, finished, tmp_path):
    """Item 6: TRAIN.AUTO_RESUME False into a folder holding a run would mix two runs."""
    out = _copy(finished, tmp_path)
    before = _snapshot(out)
    with pytest.raises(RunFolderError) as e:
        _trainer(synthetic_root, out, TRAIN__AUTO_RESUME=False)
    msg = str(e.value)
    assert "already holds a training run" in msg and "use a new OUTPUT_DIR" in msg and "AUTO_RESUME True" in msg
    assert "checkpoints/ckpt_e0001_i000000.pt" in msg and "\n" not in msg
    assert _snapshot(out) == before  # nothing pruned, overwritten or appended
    # A folder with no outputs of a run yet (killed before its first checkpoint) may be started afresh;
    # the metrics of that attempt are dropped, not mixed in.
    out2 = str(tmp_path / "started")
    os.makedirs(out2)
    for n in ("config.yaml", "log.txt"):
        shutil.copy(os.path.join(finished, n), out2)
    shutil.copy(os.path.join(finished, "metrics.jsonl"), out2)
    t = _trainer(synthetic_root, out2, TRAIN__AUTO_RESUME=False)
    t.close()
    assert t.mlog.lines == 0 and open(os.path.join(out2, "metrics.jsonl")).read() == ""


def test_changed_config_is_compared_on_resume(synthetic_root, finished, tmp_path):
    """Item 7: weight-changing edits refused before config.yaml, env.json, model_complexity.json are
    touched; training-changing edits warned about one line each; harmless ones mentioned."""
    out = _copy(finished, tmp_path)
    before = _snapshot(out)
    with pytest.raises(RunFolderError) as e:
        _trainer(synthetic_root, out, MODEL__WIDTH_MULT=0.25, DATA__NUM_FRAMES=8)
    msg = str(e.value)
    assert "ckpt_e0001_i000000.pt" in msg and "MODEL.WIDTH_MULT 0.125 -> 0.25" in msg
    assert "DATA.NUM_FRAMES 4 -> 8" in msg and "new OUTPUT_DIR" in msg and "\n" not in msg
    assert _snapshot(out) == before

    t = _trainer(synthetic_root, out, SOLVER__BASE_LR=0.01, LOG_PERIOD=7, DATA_LOADER__NUM_WORKERS=1)
    t.close()
    log = open(os.path.join(out, "log.txt")).read().splitlines()
    changed = [ln for ln in log if "config changed since ckpt_e0001_i000000.pt" in ln]
    assert len(changed) == 1 and "SOLVER.BASE_LR 0.05 -> 0.01" in changed[0]
    harmless = [ln for ln in log if "do not affect training" in ln]
    assert len(harmless) == 1 and "LOG_PERIOD 100 -> 7" in harmless[0]
    assert "DATA_LOADER.NUM_WORKERS 0 -> 1" in harmless[0]
    assert "LOG_PERIOD: 7" in open(os.path.join(out, "config.yaml")).read()  # the checks passed: written now


def test_compare_config_classes(synthetic_root, tmp_path):
    saved = tiny_cfg(synthetic_root, str(tmp_path / "a"))
    new = tiny_cfg(synthetic_root, str(tmp_path / "b"), MODEL__ARCH="iresnet3d_50", DATA__TRAIN_CROP_SIZE=40,
                   TRAIN__BATCH_SIZE=4, TEST__NUM_SPATIAL_CROPS=3)
    refused, changed, harmless = compare_config(saved.dump(), new)
    assert [r.split()[0] for r in refused] == ["DATA.TRAIN_CROP_SIZE", "MODEL.ARCH"]
    assert [c.split()[0] for c in changed] == ["TRAIN.BATCH_SIZE"]
    assert [h.split()[0] for h in harmless] == ["OUTPUT_DIR", "TEST.NUM_SPATIAL_CROPS"]


def test_ddp_every_rank_refuses_a_locked_folder(synthetic_root, tmp_path):
    """Under DDP rank 0 holds the lock and tells the others: all stop with the same error, none hangs."""
    from .test_ddp import OVERRIDES, _launch

    out = str(tmp_path / "ddp")
    lock = RunLock(out).acquire()
    try:
        results = _launch(2, ((synthetic_root, out), dict(OVERRIDES, TEST__ENABLE=False)))
    finally:
        lock.release()
    assert sorted(results) == [0, 1]
    for kind, msg in results.values():
        assert kind == "RunFolderError" and f"pid {os.getpid()}" in msg, results
