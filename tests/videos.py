"""Generated test videos (real encoded files, written with PyAV) and where the optional
real sample videos / spec examples live.

Every capability is tested on files written here, so a user's checkout (no
``../shared``) runs the whole suite. The real sample videos
(``$VIDREC_SAMPLE_VIDEOS``, else ``../shared/videos`` beside the checkout) only
add *extra* cases; see ``tests/conftest.py``.

The generated files mirror the real samples' quirks (see ``GENERATED``/``REAL``):
rotation metadata, a stream that breaks mid-way, an MKV without a frame count,
an AVI with B-frames and an audio track, a tiny clip shorter than any clip,
odd timestamps. Frames are flat grey (``value(i)``) so they survive compression
and a frame's id can be read back from its mean.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLES_ENV = "VIDREC_SAMPLE_VIDEOS"
SPEC_ENV = "VIDREC_SPEC_DIR"
BAD = ["missing", "zero", "truncated", "text", "random", "audio"]


def shared_dir(env: str, name: str) -> Path:
    """``$env`` when set (set it to a missing folder to hide the shared files), else ``../shared/<name>``."""
    value_ = os.environ.get(env)
    return Path(value_) if value_ else REPO.parent / "shared" / name


def samples_dir() -> Path:
    return shared_dir(SAMPLES_ENV, "videos")


def spec_dir() -> Path:
    return shared_dir(SPEC_ENV, "spec")


def value(i: int) -> int:
    """Grey level of frame i in the generated videos (flat frames survive compression)."""
    return 10 + 6 * (i % 40)


def moving(i: int) -> int:
    return (7 * i) % 200 + 20


def pattern(i: int) -> np.ndarray:
    """A 48x64 frame unlike every other in three ways (red level, a green bar's width, a blue line's row):
    a frame read in place of its neighbour cannot pass for it."""
    a = np.zeros((48, 64, 3), np.uint8)
    a[..., 0] = moving(i)
    a[:, : (i % 60) + 2, 1] = 200
    a[(i // 3) % 48, :, 2] = 255
    return a


def marked(level: int, size) -> np.ndarray:
    """A flat ``level`` frame with a bright block in the top-left corner: shows which way a rotation went."""
    f = np.full((size[0], size[1], 3), level, np.uint8)
    f[: size[0] // 3, : size[1] // 4] = 240
    return f


def _image(v, size) -> np.ndarray:
    if isinstance(v, np.ndarray):
        return v
    return np.full((size[0], size[1], 3), v, np.uint8)


def write_video(path, n=40, size=(48, 64), codec="libx264", pix="yuv420p", fps=25, fmt=None,
                values: Callable[[int], object] = value, *, audio: Optional[str] = None,
                rotation: Optional[int] = None, bframes: Optional[int] = None,
                pts: Optional[Sequence[int]] = None, options: Optional[Dict[str, str]] = None) -> str:
    """Encode ``n`` frames (``values(i)``: a grey level or an (H, W, 3) uint8 image) to ``path``.

    ``audio``: an audio codec ("libmp3lame", "libopus", "aac", ...) for a second (silent-ish
    tone) stream of the same duration; ``rotation``: display-matrix rotation in degrees
    counter-clockwise (PyAV >= 18 ``set_display_rotation``; ``stream.metadata["rotate"]``
    is *not* written any more); ``bframes``: max B-frames (out-of-order pts in decode
    order); ``pts``: the frames' timestamps in 1/fps units (gaps, an offset start).
    """
    with av.open(str(path), "w", format=fmt) as out:
        s = out.add_stream(codec, rate=fps, options=dict(options or {}))
        s.height, s.width, s.pix_fmt = size[0], size[1], pix
        if bframes is not None:
            s.codec_context.max_b_frames = bframes
        if rotation is not None:
            s.set_display_rotation(rotation)
        a = None
        if audio:
            a = out.add_stream(audio, rate=48000 if audio in ("libopus", "opus") else 44100)
            a.layout = "mono"
        tone = _Tone(out, a) if a is not None else None
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(_image(values(i), size), format="rgb24")
            if pts is not None:
                frame.pts = int(pts[i])
            out.mux(s.encode(frame))
            if tone is not None:
                tone.until((i + 1) / fps)  # interleaved, as a camera or an encoder would write it
        out.mux(s.encode())
        if tone is not None:
            tone.close()
    return str(path)


class _Tone:
    """A quiet 440 Hz tone on ``stream``, written in the encoder's frame size and sample format."""

    def __init__(self, out, stream):
        self.out, self.stream, self.done = out, stream, 0
        self.rate = stream.codec_context.sample_rate
        self.fmt = stream.codec_context.format.name
        self.chunk = stream.codec_context.frame_size or 1024

    def until(self, seconds: float) -> None:
        while self.done + self.chunk <= seconds * self.rate:
            t = (self.done + np.arange(self.chunk)) / self.rate
            x = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            if self.fmt.startswith("s16"):
                x = (x * 32767).astype(np.int16)
            elif self.fmt.startswith("s32"):
                x = (x * (2 ** 31 - 1)).astype(np.int32)
            fr = av.AudioFrame.from_ndarray(x[None], format=self.fmt, layout="mono")
            fr.sample_rate, fr.pts = self.rate, self.done
            self.out.mux(self.stream.encode(fr))
            self.done += self.chunk

    def close(self) -> None:
        self.out.mux(self.stream.encode())


def write_audio_only(path):
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=16000)
        for i in range(10):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16000, i * 1024
            out.mux(s.encode(fr))
        out.mux(s.encode())
    return str(path)


def corrupt_from(src, dst, first_packet: int) -> str:
    """Copy the H.264 mp4 ``src`` with every video packet from ``first_packet`` (decode order) broken.

    The 4-byte NAL length prefix of each of those packets is overwritten with 0xFFFFFFFF, so
    FFmpeg's decoder rejects them ("Invalid data found when processing input" from
    avcodec_send_packet): the first frames decode, the later ones raise, like a real
    damaged download. The container itself stays valid.
    """
    with av.open(str(src)) as c:
        where = [p.pos for p in c.demux(c.streams.video[0]) if p.size]
    data = bytearray(Path(src).read_bytes())
    for pos in where[first_packet:]:
        data[pos:pos + 4] = b"\xff\xff\xff\xff"
    Path(dst).write_bytes(bytes(data))
    return str(dst)


@dataclass(frozen=True)
class Video:
    """A video with the facts the tests check: frames (that decode; the header count for "corrupt"),
    displayed size, frame rate, and for generated files the grey level of frame i (``level``)."""
    path: str
    frames: int
    height: int
    width: int
    fps: float
    level: Optional[Callable[[int], int]] = None


# kind -> generated counterpart (a key of the ``vids`` fixture) and the real sample file
# of the same kind in ../shared/videos (with that file's facts, from its README).
GENERATED = {"long": "long", "tiny": "tiny", "corrupt": "corrupt", "rot90": "rot90", "rot270": "rot270",
             "mkv": "mkv_audio", "avi": "avi_audio"}
REAL = {"long": Video("demo.mp4", 280, 256, 340, 28),
        "tiny": Video("unordered.mov", 4, 50, 50, 32),
        "corrupt": Video("corrupted.mp4", 50, 720, 1280, 10),  # 50 in the header; only the first ones decode
        "rot90": Video("video_90.mov", 3, 568, 320, 30),
        "rot270": Video("video_270.mov", 3, 568, 320, 30),
        "mkv": Video("flipping_a_pancake.mkv", 310, 240, 426, 30),
        "avi": Video("test.avi", 164, 240, 320, 25)}


def generate(d: Path) -> Dict[str, str]:
    """Write the generated video set into folder ``d``: name -> path, good and bad files."""
    d = Path(d)
    v = {
        "h264": write_video(d / "h264.mp4"),
        "mpeg4": write_video(d / "mpeg4.avi", codec="mpeg4"),
        "vp9": write_video(d / "vp9.webm", n=24, codec="libvpx-vp9"),
        "mjpeg": write_video(d / "mjpeg.avi", n=24, codec="mjpeg", pix="yuvj420p"),
        "av1": write_video(d / "av1.mkv", n=24, size=(64, 64), codec="libsvtav1"),
        "odd": write_video(d / "odd.mp4", n=24, size=(33, 47), pix="yuv444p"),
        "one": write_video(d / "one.mp4", n=1),
        "long": write_video(d / "long.mp4", n=120, values=lambda i: 8 + 2 * i),
        "mkv40": write_video(d / "mkv40.mkv", n=40),
        # Rotation metadata (display matrix). Stored 32x64, displayed 64x32 (portrait) for 90/270.
        **{f"rot{deg}": write_video(d / f"rot{deg}.mp4", n=12, size=(32, 64), rotation=deg,
                                    values=lambda i: marked(value(i), (32, 64))) for deg in (90, 270, 180)},
        # Displayed 48 px wide: decord 0.6 cannot convert this one (see test_decoders.py).
        "rot90_w48": write_video(d / "rot90_w48.mp4", n=12, size=(48, 64), rotation=90,
                                 values=lambda i: marked(value(i), (48, 64))),
        # MKV + Opus audio: Matroska stores no frame count (the header count comes from the duration).
        "mkv_audio": write_video(d / "mkv_audio.mkv", n=70, fps=30, audio="libopus"),
        # AVI, MPEG-4 Part 2 with B-frames and an MP3 track (like the real test.avi). 2 Mb/s: exact grey levels.
        "avi_audio": write_video(d / "avi_audio.avi", n=100, codec="mpeg4", bframes=2, audio="libmp3lame",
                                 options={"b": "2M"}),
        # The same without B-frames: FFmpeg's AVI muxer leaves an empty video chunk at index 1 when an MP3
        # track is muxed with it (header 101 frames, 100 decode, pts 0, 2, 3, ...): a timestamp gap.
        "avi_gap": write_video(d / "avi_gap.avi", n=100, codec="mpeg4", audio="libmp3lame", options={"b": "2M"}),
        # Tiny (4 frames, 50x50, 32 fps, B-frames: pts out of order in decode order): shorter than any clip.
        "tiny": write_video(d / "tiny.mov", n=4, size=(50, 50), fps=32, bframes=2),
        # Odd timestamps: starts at 2 s, and every 10th frame slot is skipped (variable frame rate).
        "vfr": write_video(d / "vfr.mp4", n=90, pts=[50 + i + i // 10 for i in range(90)]),
    }
    # A stream that breaks mid-way: 60 frames, every packet from the 30th broken.
    whole = write_video(d / "corrupt_src.mp4", n=60)
    v["corrupt"] = corrupt_from(whole, d / "corrupt.mp4", 30)
    data = Path(v["mkv40"]).read_bytes()
    (d / "lying_header.mkv").write_bytes(data[: int(len(data) * 0.6)])  # header says 40 frames, fewer decode
    v["lying"] = str(d / "lying_header.mkv")
    (d / "zero.mp4").write_bytes(b"")
    h264 = Path(v["h264"]).read_bytes()
    (d / "truncated.mp4").write_bytes(h264[: len(h264) // 2])
    (d / "text.mp4").write_text("this is not a video\n" * 50)
    (d / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    v.update(zero=str(d / "zero.mp4"), truncated=str(d / "truncated.mp4"), text=str(d / "text.mp4"),
             random=str(d / "random.mp4"), audio=write_audio_only(d / "audio.m4a"), missing=str(d / "missing.mp4"))
    return v


# Facts of the generated kinds (frames that decode; displayed height, width; fps).
GENERATED_FACTS = {"long": (120, 48, 64, 25), "tiny": (4, 50, 50, 32), "corrupt": (60, 48, 64, 25),
                   "rot90": (12, 64, 32, 25), "rot270": (12, 64, 32, 25), "mkv": (70, 48, 64, 30),
                   "avi": (100, 48, 64, 25)}


def generated_media(vids: Dict[str, str]) -> Dict[str, Video]:
    return {k: Video(vids[GENERATED[k]], *GENERATED_FACTS[k], level=(lambda i: 8 + 2 * i) if k == "long" else value)
            for k in GENERATED}


def real_media(folder: Path) -> Dict[str, Video]:
    return {k: Video(str(Path(folder) / v.path), v.frames, v.height, v.width, v.fps) for k, v in REAL.items()}
