"""List the shipped configs (with model, dataset and clip) and the registered models.

    vidrec configs              # configs, then models
    vidrec configs --models     # only the model names
"""
import argparse

from .common import add_common_args, one_line_errors


def first_comment(path) -> str:
    """A config's first comment line: what it is for."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            text = line.lstrip("# ").rstrip()
            return text if len(text) <= 60 else text[:57].rstrip(" ,;:(") + "..."
    return ""


def config_rows():
    """(name, arch, clip, description) for every shipped config."""
    from ..config import load_config
    from ..shipped import CONFIG_DIR, shipped_configs

    rows = []
    for name in shipped_configs():
        cfg = load_config(name)
        rows.append((name.removesuffix(".yaml"), cfg.MODEL.ARCH,
                     f"{cfg.DATA.NUM_FRAMES}x{cfg.DATA.SAMPLING_RATE}", first_comment(CONFIG_DIR / name)))
    return rows


@one_line_errors
def main(argv=None, prog=None) -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--models", action="store_true", help="list only the registered model names")
    args = p.parse_args(argv)
    from ..models import list_models
    from ..shipped import CONFIG_DIR

    if not args.models:
        rows = config_rows()
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        print(f"shipped configs (in {CONFIG_DIR}; use as --cfg NAME):")
        for r in rows:
            print("  " + "  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3])
        print("\nmodels (MODEL.ARCH):")
    names = list_models()
    if args.models:
        print("\n".join(names))
    else:
        import textwrap

        print(textwrap.fill(", ".join(names), width=100, initial_indent="  ", subsequent_indent="  "))
    return 0
