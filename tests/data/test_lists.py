import csv
import json
from pathlib import Path

import pytest

from tests.videos import SPEC_ENV, spec_dir
from vidrec.data import lists as L

# Small annotation files in the official formats (our own rows).
# Kinetics-400 CSV: quoted class names with parentheses/commas, spaces, YouTube ids starting with "-".
KINETICS_CSV = """label,youtube_id,time_start,time_end,split
abseiling,3caPS4FHFF8,36,46,val
air drumming,-VtLx-mcPds,4,14,val
"passing American football (not in game)",--LbgqN3Ogw,121,131,val
"tying knot (not on a tie)",AbC_dEf-123,1,11,val
zumba,gone_video1,0,10,val
"""
# Something-Something-v2: labels JSON (template without brackets -> class id as a string) and a
# train/validation JSON (template with [something]; video {id}.webm).
SSV2_LABELS = {"Approaching something with your camera": "0", "Holding something next to something": "19",
               "Pushing something from left to right": "93", "Pushing something from right to left": "94"}
SSV2_VALIDATION = [
    {"id": "1001", "label": "holding a cup next to a book", "template": "Holding [something] next to [something]",
     "placeholders": ["a cup", "a book"]},
    {"id": "1002", "label": "pushing a pen from left to right", "template": "Pushing [something] from left to right",
     "placeholders": ["a pen"]},
    {"id": "1003", "label": "pushing keys from right to left", "template": "Pushing [something] from right to left",
     "placeholders": ["keys"]},
]


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


@pytest.fixture
def examples(tmp_path):
    d = tmp_path / "annotations"
    d.mkdir()
    (d / "kinetics400_val.csv").write_text(KINETICS_CSV)
    (d / "ssv2_labels.json").write_text(json.dumps(SSV2_LABELS, indent=1))
    (d / "ssv2_validation.json").write_text(json.dumps(SSV2_VALIDATION, indent=1))
    return d


def test_kinetics_csv_layouts(tmp_path, examples):
    root = tmp_path / "k400"
    (root / "abseiling").mkdir(parents=True)
    (root / "air_drumming").mkdir()
    (root / "tying knot (not on a tie)").mkdir()
    (root / "abseiling" / "3caPS4FHFF8_000036_000046.mp4").write_bytes(b"x")           # class folder as is
    (root / "air_drumming" / "-VtLx-mcPds_000004_000014.mp4").write_bytes(b"x")        # spaces -> _
    (root / "--LbgqN3Ogw_000121_000131.mp4").write_bytes(b"x")                         # flat, id starts with -
    (root / "tying knot (not on a tie)" / "AbC_dEf-123_000001_000011.webm").write_bytes(b"x")  # other extension
    names = L.read_class_names(L.LISTS_DIR / "kinetics400_classes.txt")
    csv_file = examples / "kinetics400_val.csv"
    paths, labels, missing = L.read_kinetics_csv(csv_file, root, names)
    assert paths == ["abseiling/3caPS4FHFF8_000036_000046.mp4", "air_drumming/-VtLx-mcPds_000004_000014.mp4",
                     "--LbgqN3Ogw_000121_000131.mp4", "tying knot (not on a tie)/AbC_dEf-123_000001_000011.webm"]
    assert labels == [0, 1, names.index("passing American football (not in game)"),
                      names.index("tying knot (not on a tie)")]
    assert missing == ["gone_video1_000000_000010"]
    out = tmp_path / "k.csv"
    res = L.build_list("kinetics", csv_file, root, out)
    assert res["found"] == 4 and res["missing"] == 1
    assert Path(res["missing_file"]).read_text() == "gone_video1_000000_000010\n"
    assert L.read_path_label_list(out) == (paths, labels)
    bad = tmp_path / "bad.csv"
    bad.write_text("label,youtube_id,time_start,time_end,split\nnot a class,x,0,10,val\n")
    with pytest.raises(L.ListError, match=r"bad.csv:2: class 'not a class'"):
        L.read_kinetics_csv(bad, root, names)


def test_ssv2_json(tmp_path, examples):
    (tmp_path / "1001.webm").write_bytes(b"x")
    (tmp_path / "1003.webm").write_bytes(b"x")
    labels_file = examples / "ssv2_labels.json"
    paths, labels, missing = L.read_ssv2_json(examples / "ssv2_validation.json", labels_file, tmp_path)
    assert (paths, labels, missing) == (["1001.webm", "1003.webm"], [19, 94], ["1002.webm"])
    names = L.ssv2_class_names(labels_file)
    assert names[93] == "Pushing something from left to right"
    full = L.read_class_names(L.LISTS_DIR / "ssv2_classes.txt")
    assert len(full) == 174 and full[93] == names[93]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": "1", "template": "Unknown [something]"}]))
    with pytest.raises(L.ListError, match="not in"):
        L.read_ssv2_json(bad, labels_file)
    bad.write_text(json.dumps([{"id": "1"}]))  # the test split's JSON: ids only
    with pytest.raises(L.ListError, match="no template"):
        L.read_ssv2_json(bad, labels_file)


# ---- extra: the spec's annotation examples, when the spec folder is present
def _spec_examples():
    d = spec_dir() / "annotation_examples"
    if not (d / "kinetics400_val_example.csv").is_file():
        pytest.skip(f"extra spec-example case: annotation examples not found at {d} (set {SPEC_ENV})")
    return d


def test_kinetics_spec_example(tmp_path):
    """Every row of the spec's CSV but the last is put on disk (flat): found, labelled by the shipped class list."""
    ex = _spec_examples() / "kinetics400_val_example.csv"
    with open(ex, newline="") as f:
        rows = list(csv.DictReader(f))
    names = L.read_class_names(L.LISTS_DIR / "kinetics400_classes.txt")
    stems = [f"{r['youtube_id']}_{int(r['time_start']):06d}_{int(r['time_end']):06d}" for r in rows]
    for stem in stems[:-1]:
        (tmp_path / f"{stem}.mp4").write_bytes(b"x")
    paths, labels, missing = L.read_kinetics_csv(ex, tmp_path, names)
    assert paths == [f"{s}.mp4" for s in stems[:-1]] and missing == stems[-1:]
    assert labels == [names.index(r["label"]) for r in rows[:-1]]


def test_ssv2_spec_example(tmp_path):
    d = _spec_examples()
    items = json.loads((d / "ssv2_validation_example.json").read_text())
    lookup = json.loads((d / "ssv2_labels_example.json").read_text())
    for it in items[:-1]:
        (tmp_path / f"{it['id']}.webm").write_bytes(b"x")
    paths, labels, missing = L.read_ssv2_json(d / "ssv2_validation_example.json", d / "ssv2_labels_example.json",
                                              tmp_path)
    assert paths == [f"{it['id']}.webm" for it in items[:-1]] and missing == [f"{items[-1]['id']}.webm"]
    assert labels == [int(lookup[it["template"].replace("[", "").replace("]", "")]) for it in items[:-1]]


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
