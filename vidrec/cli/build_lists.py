"""Turn official Kinetics-400 / Something-Something-v2 annotations plus a video root into
``path,label`` lists (paths relative to the root) and report videos missing on disk.

Examples:
  vidrec build-lists kinetics --annotations kinetics400/train.csv --root /data/k400/train \\
      --out data_lists/k400_train.csv
  vidrec build-lists ssv2 --annotations something-something-v2-validation.json \\
      --labels something-something-v2-labels.json --root /data/ssv2/videos --out data_lists/ssv2_val.csv
"""
import argparse

from .common import EXIT_OK, EXIT_PARTIAL, add_common_args, one_line_errors


@one_line_errors
def main(argv=None, prog=None) -> int:
    from ..data.lists import build_list
    from ..utils.text import plural

    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("dataset", choices=["kinetics", "ssv2"])
    p.add_argument("--annotations", required=True, help="official CSV (Kinetics) or train/validation JSON (SSv2)")
    p.add_argument("--root", required=True, help="folder holding the videos (flat or one folder per class)")
    p.add_argument("--out", required=True, help="list to write, e.g. data_lists/k400_train.csv")
    p.add_argument("--labels", default="", help="SSv2 labels JSON (template -> id)")
    p.add_argument("--classes", default="", help="Kinetics class list, one per line "
                   "(default: the shipped kinetics400_classes.txt)")
    p.add_argument("--missing", default="", help="also write the missing videos here (default: OUT.missing.txt)")
    a = p.parse_args(argv)
    res = build_list(a.dataset, a.annotations, a.root, a.out, labels_file=a.labels, classes_file=a.classes,
                     missing_file=a.missing or None)
    print(f"wrote {res['out']}: {plural(res['found'], 'video')}, {res['missing']} of {res['found'] + res['missing']} "
          f"missing on disk" + (f" (listed in {res['missing_file']})" if res["missing"] else ""))
    return EXIT_PARTIAL if res["missing"] else EXIT_OK

