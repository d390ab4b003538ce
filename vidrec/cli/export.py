"""Export a trained vidrec model to TorchScript (.pt) or ONNX (.onnx) and check parity.

The exported model takes normalised clips (N, 3, T, H, W) float32 with a
dynamic batch N and returns logits (or --output probs / features). After
exporting, it is run on a sample clip (the first windows of --video, else
seeded noise) and compared with the eager model; the run fails (exit 1) when
outputs differ by more than --atol + --rtol * |eager|. OUT.json records the
input recipe, class names and the parity figures.

Examples:
  vidrec export --model runs/k400_ir50/model --out model.ts.pt
  vidrec export --cfg my.yaml --weights model.safetensors --out model.ts.pt
  vidrec export --cfg my.yaml --weights model.safetensors --out model.onnx --video sample.mp4
ONNX needs: pip install 'vidrec[export]' (onnx, onnxscript, onnxruntime)
"""
import argparse

from .common import (EXIT_PARTIAL, SETUP_ERRORS, add_common_args, add_model_args, build_predictor, check_model_args,
                     fail, one_line_errors, setup_failed, split_inputs_opts)


def parse_args(argv=None, prog=None):
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("opts", nargs="*", metavar="KEY VALUE", help="config overrides")
    add_model_args(p)
    p.add_argument("--out", required=True, help="output file: .onnx for ONNX, anything else TorchScript")
    p.add_argument("--format", choices=["torchscript", "onnx"], default=None, help="default: from --out's suffix")
    p.add_argument("--output", choices=["logits", "probs", "features"], default="logits",
                   help="what the exported model returns (default logits)")
    p.add_argument("--video", default=None, help="sample video for the parity check (default: seeded noise)")
    p.add_argument("--atol", type=float, default=1e-4, help="absolute tolerance (default 1e-4)")
    p.add_argument("--rtol", type=float, default=1e-3, help="relative tolerance (default 1e-3)")
    p.add_argument("--onnx-exporter", choices=["dynamo", "legacy"], default="dynamo",
                   help="torch.onnx exporter (default dynamo; legacy is TorchScript-based, deprecated in torch)")
    args = p.parse_intermixed_args(argv)
    rest, args.opts = split_inputs_opts(args.opts)
    if rest:
        p.error(f"unexpected arguments: {' '.join(rest)}")
    check_model_args(p, args)
    return args


@one_line_errors
def main(argv=None, prog=None) -> int:
    args = parse_args(argv, prog)
    from ..data import VideoError
    from ..inference.export import export_model

    try:
        predictor = build_predictor(args, args.opts, memory_format="contiguous")  # portable weights
        doc = export_model(predictor, args.out, args.format, args.output, args.video, atol=args.atol,
                           rtol=args.rtol, onnx_exporter=args.onnx_exporter)
    except (VideoError, *SETUP_ERRORS) as e:
        return setup_failed(e)
    par = doc["parity"]
    for c in par["checks"]:
        print(f"parity batch {c['batch']}: output {tuple(c['shape'])}, max |exported - eager| = "
              f"{c['max_abs_diff']:.3g} -> {'ok' if c['ok'] else 'FAILED'}")
    if not par["ok"]:
        return fail(f"parity check failed: max |exported - eager| = {par['max_abs_diff']:.3g} "
                    f"(atol {args.atol}, rtol {args.rtol})", EXIT_PARTIAL)
    print(f"exported {args.out} (parity ok, max abs diff {par['max_abs_diff']:.2g}); description in {args.out}.json")
    return 0

