"""Turn command-line inputs (videos, folders, list files) into a list of video paths.

The code lives in :mod:`vidrec.data.inputs` (``check-videos`` uses it too); these names stay importable here.
"""
from ..data.inputs import LIST_EXTS, expand_inputs, read_video_list  # noqa: F401

__all__ = ["LIST_EXTS", "expand_inputs", "read_video_list"]
