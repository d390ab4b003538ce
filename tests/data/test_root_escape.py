"""Symlinks inside the data root that lead outside it are refused (datasets and check-videos), unless
DATA.ALLOW_OUTSIDE_ROOT / allow_outside opts out; links that stay inside, and a symlinked root, are fine."""
import os

import pytest

from vidrec.data import lists as L
from vidrec.data.datasets import build_dataset
from vidrec.data.video_check import collect_paths


@pytest.fixture
def tree(tmp_path):
    """root/ with real videos, a link to a folder outside, a link to /etc/passwd and an inside link."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"not yours")
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "v.mp4").write_bytes(b"v")
    os.symlink(outside, root / "b")                      # a folder outside
    os.symlink("/etc/passwd", root / "a" / "pw.mp4")     # a file outside
    os.symlink(root / "a" / "v.mp4", root / "a" / "same.mp4")  # stays inside
    os.symlink(root, tmp_path / "root_link")             # the root itself reached through a link
    return tmp_path, root


def test_resolve_under_refuses_symlinks_that_leave_the_root(tree):
    tmp, root = tree
    for rel in ("b/secret.mp4", "a/pw.mp4"):
        with pytest.raises(L.ListError, match=r"outside the data root .*symlink.*ALLOW_OUTSIDE_ROOT"):
            L.resolve_under(str(root), rel)
        assert L.resolve_under(str(root), rel, allow_outside=True) == str(root / rel)  # the opt-out
    assert L.resolve_under(str(root), "a/same.mp4") == str(root / "a" / "same.mp4")
    assert L.resolve_under(str(tmp / "root_link"), "a/v.mp4") == str(tmp / "root_link" / "a" / "v.mp4")
    with pytest.raises(L.ListError, match="outside the data root"):
        L.resolve_under(str(tmp / "root_link"), "b/secret.mp4")


def test_datasets_refuse_escaping_entries(tree, small_cfg):
    tmp, root = tree
    cfg = small_cfg
    cfg.DATA.PATH_TO_DATA_DIR = str(root)
    lst = tmp / "train.csv"
    for rel in ("b/secret.mp4", "a/pw.mp4"):
        lst.write_text(f"a/v.mp4 0\n{rel} 1\n")
        cfg.DATA.TRAIN_LIST = str(lst)
        with pytest.raises(L.ListError, match=rf"'{rel}' points outside the data root"):
            build_dataset(cfg, "train")
    cfg.DATA.ALLOW_OUTSIDE_ROOT = True
    assert build_dataset(cfg, "train").paths[1] == str(root / "a" / "pw.mp4")
    # Folder-per-class datasets: the link to /etc/passwd sits in class folder "a".
    cfg.DATA.DATASET, cfg.DATA.TRAIN_LIST, cfg.DATA.ALLOW_OUTSIDE_ROOT = "folder", "", False
    with pytest.raises(L.ListError, match=r"'a/pw.mp4' points outside"):
        build_dataset(cfg, "train")


def test_check_videos_inputs_are_held_to_the_root(tree):
    tmp, root = tree
    lst = tmp / "list.txt"
    lst.write_text("a/v.mp4 0\na/same.mp4 0\n")
    assert collect_paths([str(lst)], str(root)) == [str(root / "a" / "v.mp4"), str(root / "a" / "same.mp4")]
    for rel in ("b/secret.mp4", "a/pw.mp4", "../outside/secret.mp4"):
        lst.write_text(f"a/v.mp4 0\n{rel} 1\n")
        with pytest.raises(L.ListError, match=rf"'{rel}' points outside the data root {root}"):
            collect_paths([str(lst)], str(root))
        got = collect_paths([str(lst)], str(root), allow_outside=True)[1]
        assert os.path.normpath(got) == os.path.normpath(root / rel)
    # A folder given as input is its own root: the link to /etc/passwd inside it is refused.
    with pytest.raises(L.ListError, match=r"'a/pw.mp4' points outside the data root"):
        collect_paths([str(root)])
    assert sorted(collect_paths([str(root)], allow_outside=True)) == sorted(
        str(root / "a" / n) for n in ("pw.mp4", "same.mp4", "v.mp4"))
