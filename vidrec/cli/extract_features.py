"""Extract per-clip pooled embeddings of videos with a trained vidrec model.

For each video, OUT/<name>.npy holds (num_clips, embed_dim) features (2048-d
for 50-layer models) of clips every --stride frames (or --stride-seconds),
OUT/<name>.json the clip timestamps, fps, model, weights, config hash and the
source's identity (absolute path, size, mtime), and OUT/index.json all results
that still match their source (the others under "stale"). <name> is the file
stem, or stem-<hash of the path> when another video already has that name; a
stored video keeps its name. Reruns skip videos already done from the same,
unchanged source with the same settings (files are written atomically);
failures are logged (OUT/failures.shard*.jsonl) and the run continues, exiting 1
at the end.

Examples:
  vidrec extract --model runs/k400_ir50/model videos/ --out feats/ --stride 16
  vidrec extract --cfg kinetics_iresnet3d50.yaml --weights model.safetensors videos/ --out feats/
  vidrec extract ... --shard 0/4 &  vidrec extract ... --shard 1/4 & ...
  torchrun --nproc_per_node=8 tools/extract_features.py --cfg X.yaml --weights W list.txt --out feats/
"""
import os
import sys

from .common import (EXIT_OK, EXIT_PARTIAL, SETUP_ERRORS, build_predictor, fail, one_line_errors, parse_video_args,
                     setup_failed, setup_logging, video_parser)


def parse_args(argv=None, prog=None):
    p = video_parser(__doc__, prog)
    p.add_argument("--out", required=True, help="output folder")
    s = p.add_mutually_exclusive_group()
    s.add_argument("--stride", type=int, default=None, help="frames between clip starts (default: one clip span)")
    s.add_argument("--stride-seconds", type=float, default=None, help="seconds between clip starts")
    p.add_argument("--dtype", default="float16", choices=["float16", "float32"], help="stored dtype (default float16)")
    p.add_argument("--stages", action="store_true",
                   help="also store each stage's map averaged over space: OUT/<name>.stage{1..4}.npy (N, C, T)")
    p.add_argument("--shard", default=None, metavar="i/n",
                   help="process every n-th video starting at i (default: torchrun RANK/WORLD_SIZE, else all)")
    p.add_argument("--overwrite", action="store_true", help="recompute videos that are already done")
    p.add_argument("-q", "--quiet", action="store_true", help="log only failures")
    return parse_video_args(p, argv)


@one_line_errors
def main(argv=None, prog=None) -> int:
    args = parse_args(argv, prog)
    setup_logging(args.quiet)
    from ..inference.features import FeatureExtractor, parse_shard
    from ..inference.inputs import expand_inputs
    from ..utils.text import plural

    try:
        shard = parse_shard(args.shard)
        device = args.device
        if device is None and "LOCAL_RANK" in os.environ:
            import torch

            device = f"cuda:{os.environ['LOCAL_RANK']}" if torch.cuda.is_available() else None
        predictor = build_predictor(args, args.opts, device=device)
        ex = FeatureExtractor(predictor, args.out, args.stride, args.stride_seconds, args.dtype, args.stages)
    except SETUP_ERRORS as e:
        return setup_failed(e)
    paths = expand_inputs(args.inputs)
    if not paths:
        return fail(f"no video files found in {' '.join(args.inputs)}")
    s = ex.run(paths, shard, overwrite=args.overwrite)
    for path, reason in s["failed"]:
        print(f"FAILED {path}: {reason}", file=sys.stderr)
    for path, warning in s["warnings"]:
        print(f"WARNING {path}: {warning}", file=sys.stderr)
    print(f"shard {shard[0]}/{shard[1]}: {plural(s['videos'], 'video')}: {s['done']} extracted, {s['skipped']} "
          f"already done, {len(s['failed'])} failed; features in {args.out}")
    return EXIT_PARTIAL if s["failed"] else EXIT_OK

