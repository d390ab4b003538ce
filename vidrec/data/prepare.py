"""Re-encode videos for training: a smaller short side, an optional frame-rate cap, frequent key frames.

Why: reading dominates the cost of a training clip, and it grows with the pixels decoded
(a 720p frame has 5x the pixels of a 320-short-side one) and with the frames decoded from
the key frame before a clip to its start. A prepared copy is decoded once, sequentially, here,
so that every epoch after reads the small, seekable copy.

Each copy keeps its source's relative path (and name) under the output root, so the same list
works with ``DATA.PATH_TO_DATA_DIR`` set to the new root. It is H.264 (libx264; MPEG-4 Part 2
where FFmpeg lacks it) yuv420p in an MP4 container whatever the name's extension (FFmpeg-based
readers go by the content), upright (a display rotation is applied to the pixels and not
stored), with the source's presentation times and no audio. It is written to a locked temp
file beside its final name, verified by decoding it (frame count, size), then renamed: a final
name only ever holds a complete, verified copy. The settings and the source's size and
modification time are stored in the copy's metadata, so a rerun skips the copies that match
and redoes the others (changed settings, changed source).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .backends.pyav_backend import rotate
from .decoders import FrameStream, PARTIAL_POLICIES, VideoError, index_video
from .errors import reason_of
from ..utils.io import atomic_output, atomic_write_text, remove_stale_temp_files
from ..utils.parallel import codec_threads, default_workers, process_map
from ..utils.text import plural
from ..utils.time_limit import TimeLimitExceeded, time_limit

RECIPE_TAG = "vidrec prepare "  # prefix of the JSON recipe in the copy's "comment" metadata
RECIPE_VERSION = 2
TICKS_PER_S = 60000  # output time base: exact for 24, 25, 30, 50, 60, 29.97, 59.94 fps; < 2^16 for MPEG-4
REPORT_NAME = "prepare_report.json"
BASE_SECONDS, SECONDS_PER_VIDEO_SECOND = 120.0, 10.0  # the default time allowed per video
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
FIELDS = ["source", "output", "status", "reason", "source_bytes", "output_bytes", "seconds",
          "source_frames", "output_frames", "source_size", "output_size", "source_fps", "output_fps"]


@dataclass(frozen=True)
class Settings:
    """What a copy is made with; any change makes a rerun redo the copy."""
    short_side: int = 320   # the shorter display side; smaller sources keep their size (never upscaled)
    max_fps: float = 0.0    # 0: every frame; else at most one frame per 1/max_fps s of presentation time
    keyint: int = 32        # frames from one key frame to the next (x264 keyint, no scene-cut key frames);
    # 32: read as fast as 8-64 (within the noise), faster than 300, 36% smaller than 16 (prepare_speed.py)
    crf: int = 23           # x264 constant rate factor (lower: larger, closer to the source)
    preset: str = "veryfast"
    fast_decode: bool = True  # x264 tune=fastdecode (no CABAC, no deblocking): decodes faster, a larger file
    partial: str = "keep"   # a source whose stream breaks: keep = copy the frames before the break

    def __post_init__(self):
        if self.short_side < 2 or self.short_side % 2:
            raise ValueError(f"short side must be an even number of pixels (yuv420p), got {self.short_side}")
        if self.keyint < 1 or self.max_fps < 0:
            raise ValueError(f"keyint must be >= 1 and max_fps >= 0, got {self.keyint} and {self.max_fps}")
        if self.preset not in X264_PRESETS:
            raise ValueError(f"preset must be one of {', '.join(X264_PRESETS)}, got {self.preset!r}")
        if self.partial not in PARTIAL_POLICIES:
            raise ValueError(f"partial must be one of {PARTIAL_POLICIES}, got {self.partial!r}")


def codec_name() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def target_size(height: int, width: int, short_side: int) -> Tuple[int, int]:
    """The copy's display size: the shorter side scaled down to ``short_side`` (never up), aspect
    kept, both sides even (yuv420p)."""
    f = min(1.0, short_side / min(height, width))
    return max(2, 2 * int(height * f / 2 + 1e-6)), max(2, 2 * int(width * f / 2 + 1e-6))


def kept_frames(times: np.ndarray, max_fps: float) -> np.ndarray:
    """Which frames a frame-rate cap keeps: the first in each 1/max_fps slot of presentation time,
    so the copy shows at most ``max_fps`` frames a second and each at its own time."""
    if not max_fps:
        return np.ones(len(times), bool)
    slots = np.floor(np.asarray(times) * max_fps + 1e-6).astype(np.int64)
    return np.r_[True, slots[1:] != slots[:-1]] if len(slots) else np.zeros(0, bool)


def recipe(source: str, settings: Settings) -> str:
    st = os.stat(source)
    return RECIPE_TAG + json.dumps({"version": RECIPE_VERSION, "codec": codec_name(), "source_bytes": st.st_size,
                                    "source_mtime_ns": st.st_mtime_ns, **asdict(settings)}, sort_keys=True)


def stored_recipe(path: str) -> str:
    """The recipe a copy was made with ("" when there is no readable copy)."""
    import av

    try:
        with av.open(path, metadata_errors="ignore") as c:
            return c.metadata.get("comment", "")
    except Exception:  # noqa: BLE001 - missing, foreign or damaged: not up to date
        return ""


def copy_facts(path: str) -> Dict:
    """Frames, display size and rate of a copy, from its header and packets (no decoding; copies are upright)."""
    import av

    index = index_video(path)
    with av.open(path) as c:
        cc = c.streams.video[0].codec_context
        size = f"{cc.width}x{cc.height}"
    return {"output_frames": index.num_frames, "output_size": size, "output_fps": round(index.fps, 3)}


class _Encoder:
    """Frames -> H.264 (else MPEG-4 Part 2) yuv420p in MP4 at ``path``, timestamps in 1/60000 s."""

    def __init__(self, path: str, size: Tuple[int, int], fps: float, settings: Settings, comment: str,
                 threads: int):
        import av

        codec = codec_name()
        opts = {"g": str(settings.keyint), "threads": str(threads)}
        if codec == "libx264":
            opts.update(crf=str(settings.crf), preset=settings.preset, sc_threshold="0")  # key frames every keyint only
            if settings.fast_decode:
                opts["tune"] = "fastdecode"
        else:
            opts.update(b="1M", sc_threshold="1000000000")  # FFmpeg's own encoders: a huge threshold = no scene cuts
        self.container = av.open(path, "w", format="mp4")
        try:
            self.container.metadata["comment"] = comment
            self.stream = self.container.add_stream(codec, rate=Fraction(fps or 25).limit_denominator(1001),
                                                    options=opts)
            self.stream.height, self.stream.width = size
            self.stream.pix_fmt = "yuv420p"
            self.stream.codec_context.time_base = Fraction(1, TICKS_PER_S)
        except BaseException:
            self.container.close()
            raise
        self.frames = 0

    def write(self, frame, t: float) -> None:
        frame.pts, frame.time_base = round(t * TICKS_PER_S), self.stream.codec_context.time_base  # else PyAV rebases
        frame.pict_type = 0  # NONE: the source's key frames would force key frames here too
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    def finish(self) -> None:
        self.container.mux(self.stream.encode())

    def close(self) -> None:
        self.container.close()


def _quarter_turns(frame) -> int:
    """The frame's display rotation in quarter turns (0-3)."""
    return int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) % 4


def _display_size(frame) -> Tuple[int, int]:
    return (frame.width, frame.height) if _quarter_turns(frame) % 2 else (frame.height, frame.width)


def _scaled(frame, size: Tuple[int, int], reformatter):
    """The decoded ``frame`` upright (display rotation applied) at display size ``size``."""
    import av

    h, w = size
    turns = _quarter_turns(frame)
    if not turns:
        return reformatter.reformat(frame, width=w, height=h, format="yuv420p", interpolation="AREA")
    sh, sw = (w, h) if turns % 2 else (h, w)  # stored size before the rotation
    rgb = reformatter.reformat(frame, width=sw, height=sh, format="rgb24", interpolation="AREA").to_ndarray()
    return av.VideoFrame.from_ndarray(rotate(rgb, frame.rotation), format="rgb24")


def verify(path: str, frames: int, size: Tuple[int, int], threads: int = 0) -> None:
    """Decode the whole copy: ``frames`` frames of display size ``size``, else a :class:`VideoError`."""
    stream = FrameStream(path, partial="fail", threads=threads)
    n, got = 0, None
    for _, _, frame in stream:
        got = got or _display_size(frame)
        n += 1
    if n != frames or got != tuple(size):
        raise VideoError(path, f"the copy does not verify: it decodes {n} frames of {got}, "
                               f"{frames} of {tuple(size)} were written")


def encode(source: str, tmp: str, settings: Settings, comment: str, threads: int = 1) -> Dict:
    """Decode ``source`` front to back and write the copy to ``tmp``; -> its display size and, for a
    stream that breaks, the warning. ``threads``: of the decoders and the encoder (0: one per core)."""
    from av.video.reformatter import VideoReformatter

    stream = FrameStream(source, partial=settings.partial, threads=threads)
    index = stream.index
    keep = kept_frames(index.times, settings.max_fps)
    reformatter, enc, size, src_size = VideoReformatter(), None, None, None
    try:
        for fid, t, frame in stream:
            if enc is None:
                src_size = _display_size(frame)
                size = target_size(*src_size, settings.short_side)
                fps = min(index.fps, settings.max_fps) if settings.max_fps else index.fps
                enc = _Encoder(tmp, size, fps, settings, comment, threads)
            if keep[min(fid, len(keep) - 1)]:
                enc.write(_scaled(frame, size, reformatter), t)
        enc.finish()
    finally:
        if enc is not None:
            enc.close()
    verify(tmp, enc.frames, size, threads)
    return {"source_size": f"{src_size[1]}x{src_size[0]}", "warning": stream.warning}


def time_allowed(duration: float, timeout: Optional[float] = None) -> float:
    """Seconds one video may take (index, encode, verify): ``timeout``, else 120 s plus 10 s per second
    of video (a 2-core laptop makes a 320-px copy of 1080p H.264 in well under real time). 0: no limit."""
    return float(timeout) if timeout is not None else BASE_SECONDS + SECONDS_PER_VIDEO_SECOND * max(0.0, duration)


def prepare_one(source: str, output: str, settings: Settings = Settings(), threads: int = 1,
                timeout: Optional[float] = None) -> Dict:
    """Make (or keep, when up to date) the prepared copy of ``source`` at ``output`` -> a report row.

    ``status``: "done", "skipped" (the copy there was made from this source with these settings)
    or "failed" (``reason``: one line; a video that takes longer than :func:`time_allowed` fails with
    "timeout", its temp file removed). Never raises for a bad video.
    """
    row = dict.fromkeys(FIELDS, "")
    row.update(source=str(source), output=str(output), status="failed")
    t0, limit = time.perf_counter(), time_allowed(0.0, timeout)
    try:
        with time_limit(limit):  # the index alone of a file that demuxes forever
            index = index_video(source)  # a missing, empty or unreadable source fails here, before any output
        # source_frames: from its packets; output_frames: in the copy (fewer: an fps cap, a stream that breaks)
        row.update(source_bytes=os.path.getsize(source), source_frames=index.num_frames, source_fps=round(index.fps, 3))
        comment = recipe(source, settings)
        if stored_recipe(output) == comment:
            row.update(status="skipped", reason="up to date")
        else:
            limit = time_allowed(index.duration(), timeout)
            with time_limit(limit), atomic_output(output) as tmp:
                facts = encode(source, tmp, settings, comment, threads)
            row.update(status="done", reason=facts.pop("warning"), **facts)
        row.update(output_bytes=os.path.getsize(output), **copy_facts(output))
    except VideoError as e:
        row["reason"] = e.reason
    except TimeLimitExceeded:
        row["reason"] = (f"timeout: not done after {limit:g} s (no copy written; a larger --timeout, "
                         "or 0 for none, if the video is just long)")
    except Exception as e:  # noqa: BLE001 - one bad file never stops the others
        row["reason"] = reason_of(e, str(source))
    row["seconds"] = round(time.perf_counter() - t0, 3)
    return row


def _prepare_star(job):
    return prepare_one(*job)


def output_paths(items: Sequence[Tuple[str, str]], out_dir: str) -> List[Tuple[str, str, str]]:
    """(source, relative path) -> (source, output, why it cannot be made): the same relative path
    under ``out_dir``; refused when it would overwrite its source or another source's copy. Other
    sources inside ``out_dir`` (copies that a folder walk found) are left out."""
    res, taken, out_real = [], {}, os.path.realpath(out_dir)
    for source, rel in items:
        output = os.path.join(out_dir, rel)
        key, src_real = os.path.realpath(output), os.path.realpath(source)
        why = ""
        if key == src_real:
            why = "the output would overwrite the source (give another --out)"
        elif os.path.commonpath([out_real, src_real]) == out_real:
            continue
        elif key in taken:
            why = f"{taken[key]} already writes {output}"
        taken.setdefault(key, source)
        res.append((source, output, why))
    return res


def prepare_videos(items: Sequence[Tuple[str, str]], out_dir: str, settings: Settings = Settings(),
                   workers: int = 0, progress: bool = True, report: str = "", timeout: Optional[float] = None) -> Dict:
    """Prepare every ``(source, relative path)`` into ``out_dir`` over worker processes -> the report:
    ``{"settings", "videos": [rows], "totals"}``, also written as JSON to ``report`` (default
    ``out_dir/prepare_report.json``). Temp files of killed runs under ``out_dir`` are removed first.
    ``timeout``: seconds per video (default: :func:`time_allowed`)."""
    t0 = time.perf_counter()
    remove_stale_temp_files(out_dir, recursive=True)
    planned = output_paths(items, out_dir)
    todo = [(s, o, settings) for s, o, why in planned if not why]
    workers = workers or default_workers(len(todo))
    todo = [(*job, codec_threads(workers), timeout) for job in todo]
    done = iter(process_map(_prepare_star, todo, workers, progress, desc="preparing videos"))
    rows = []
    for source, output, why in planned:
        if why:
            rows.append({**dict.fromkeys(FIELDS, ""), "source": source, "output": output, "status": "failed",
                         "reason": why})
        else:
            rows.append(next(done))
    result = {"settings": {**asdict(settings), "codec": codec_name()}, "totals": totals(rows, time.perf_counter() - t0),
              "videos": rows}
    atomic_write_text(report or os.path.join(out_dir, REPORT_NAME), json.dumps(result, indent=1) + "\n")
    return result


def totals(rows: List[Dict], seconds: float) -> Dict:
    """Counts, and disk: the bytes of the sources that have a copy against the bytes of their copies."""
    ok = [r for r in rows if r["status"] != "failed"]
    size_in, size_out = sum(r["source_bytes"] for r in ok), sum(r["output_bytes"] for r in ok)
    count = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed")}
    return {"videos": len(rows), **count, "source_bytes": size_in, "output_bytes": size_out,
            "saved": round(1 - size_out / size_in, 4) if size_in else 0.0, "seconds": round(seconds, 2)}


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def summary_line(t: Dict) -> str:
    return (f"prepared {plural(t['videos'], 'video')}: {t['done']} done, {t['skipped']} skipped (up to date), "
            f"{t['failed']} failed; {_mb(t['source_bytes'])} -> {_mb(t['output_bytes'])} "
            f"({t['saved']:.0%} saved) in {t['seconds']:.1f} s")
