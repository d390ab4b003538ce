import json
import shutil
from pathlib import Path

import pytest

from vidrec.data import lists as L

EXAMPLES = Path("/work/shared/spec/annotation_examples")


def test_path_label_formats(tmp_path):
    f = tmp_path / "l.csv"
    f.write_text("path,label\na/b c.mp4,3\n\"x,y.mp4\",0\n# comment\n\n")
    assert L.read_path_label_list(f) == (["a/b c.mp4", "x,y.mp4"], [3, 0])
    f.write_text("a/b c.mp4 3\nd.mp4\t1\n")  # space separated, header-less, path with a space
    assert L.read_path_label_list(f) == (["a/b c.mp4", "d.mp4"], [3, 1])
    f.write_text("a.mp4,1\nb.mp4,x\n")
    with pytest.raises(L.ListError, match=r"l.csv:2"):
        L.read_path_label_list(f)
    L.write_path_label_list(f, ["p q.mp4", "r,s.mp4"], [1, 2])
    assert L.read_path_label_list(f) == (["p q.mp4", "r,s.mp4"], [1, 2])


def test_resolve_under_root(tmp_path):
    assert L.resolve_under(str(tmp_path), "a/b.mp4") == str(tmp_path / "a" / "b.mp4")
    for bad in ("../x.mp4", "/etc/passwd", "a/../../x.mp4"):
        with pytest.raises(L.ListError, match="outside the data root"):
            L.resolve_under(str(tmp_path), bad)
    assert L.resolve_under(str(tmp_path), "/etc/passwd", allow_outside=True) == "/etc/passwd"


def _examples():
    if not EXAMPLES.is_dir():
        pytest.skip(f"annotation examples not found at {EXAMPLES}")
    return EXAMPLES


def test_kinetics_csv_layouts(tmp_path):
    ex = _examples()
    root = tmp_path / "k400"
    (root / "abseiling").mkdir(parents=True)
    (root / "air_drumming").mkdir()
    (root / "abseiling" / "0wR5jVB-WPk_000417_000427.mp4").write_bytes(b"x")   # class folder as is
    (root / "air_drumming" / "--nQbRBEz2s_000104_000114.mp4").write_bytes(b"x")  # spaces -> _
    (root / "-Ie3ydrgmXo_000053_000063.mp4").write_bytes(b"x")                  # flat, id starts with -
    names = L.read_class_names(L.LISTS_DIR / "kinetics400_classes.txt")
    paths, labels, missing = L.read_kinetics_csv(ex / "kinetics400_val_example.csv", root, names)
    assert paths == ["abseiling/0wR5jVB-WPk_000417_000427.mp4", "air_drumming/--nQbRBEz2s_000104_000114.mp4",
                     "-Ie3ydrgmXo_000053_000063.mp4"]
    assert labels == [0, 1, names.index("passing American football (not in game)")]
    assert missing == ["zzz_example_000000_000010"]
    out = tmp_path / "k.csv"
    res = L.build_list("kinetics", ex / "kinetics400_val_example.csv", root, out)
    assert res["found"] == 3 and res["missing"] == 1
    assert Path(res["missing_file"]).read_text() == "zzz_example_000000_000010\n"
    assert L.read_path_label_list(out) == (paths, labels)


def test_ssv2_json(tmp_path):
    ex = _examples()
    (tmp_path / "74225.webm").write_bytes(b"x")
    (tmp_path / "198186.webm").write_bytes(b"x")
    paths, labels, missing = L.read_ssv2_json(ex / "ssv2_validation_example.json", ex / "ssv2_labels_example.json",
                                              tmp_path)
    assert (paths, labels, missing) == (["74225.webm", "198186.webm"], [19, 94], ["116154.webm"])
    names = L.ssv2_class_names(ex / "ssv2_labels_example.json")
    assert names[93] == "Pushing something from left to right"
    full = L.read_class_names(L.LISTS_DIR / "ssv2_classes.txt")
    assert len(full) == 174 and full[93] == names[93]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "1", "template": "Unknown [something]"}]))
    with pytest.raises(L.ListError, match="not in"):
        L.read_ssv2_json(bad, ex / "ssv2_labels_example.json")


def test_scan_folder(tmp_path):
    for c, n in [("b_cls", 2), ("a_cls", 1)]:
        (tmp_path / c / "sub").mkdir(parents=True)
        for i in range(n):
            (tmp_path / c / "sub" / f"{i}.mp4").write_bytes(b"x")
        (tmp_path / c / "notes.txt").write_text("ignored")
    paths, labels, classes = L.scan_folder(tmp_path)
    assert classes == ["a_cls", "b_cls"] and labels == [0, 1, 1]
    assert paths[0] == "a_cls/sub/0.mp4"


def test_find_list(tmp_path):
    assert L.find_list("kinetics400_classes.txt") == L.LISTS_DIR / "kinetics400_classes.txt"
    with pytest.raises(L.ListError, match="not found"):
        L.find_list(str(tmp_path / "nope.csv"))
    with pytest.raises(L.ListError, match="no list file configured"):
        L.find_list("")
