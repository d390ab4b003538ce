"""Fixtures shared by every test folder: the generated videos and the optional real samples.

* ``vids``: name -> path of the generated video set (tests/videos.py), written once per session.
* ``media``: kind -> :class:`tests.videos.Video` for the kinds that exist both generated and as a
  real sample (long, tiny, corrupt, rot90, rot270, mkv, avi). Parametrised: the ``generated`` case
  always runs; the ``real-samples`` case is an extra that skips when the real videos are absent.
* ``samples``: the folder of the real sample videos; skips when absent. Found through
  ``$VIDREC_SAMPLE_VIDEOS`` (which overrides the fallback: set it to a missing folder to hide
  them), else ``../shared/videos`` beside the checkout.
"""
import pytest

from tests.videos import SAMPLES_ENV, generate, generated_media, real_media, samples_dir


@pytest.fixture(scope="session")
def vids(tmp_path_factory):
    """name -> path of generated videos, good and bad (see tests/videos.py: generate)."""
    return generate(tmp_path_factory.mktemp("vids"))


def _samples():
    d = samples_dir()
    if not (d / "demo.mp4").is_file():
        pytest.skip(f"extra real-sample case: real sample videos not found at {d} (set {SAMPLES_ENV})")
    return d


@pytest.fixture(scope="session")
def samples():
    """Folder of the real sample videos (extra cases only)."""
    return _samples()


@pytest.fixture(scope="session", params=["generated", "real-samples"])
def media(request, vids):
    """kind -> Video: the generated files, and (extra, skipped when absent) the real samples of the same kinds."""
    if request.param == "generated":
        return generated_media(vids)
    return real_media(_samples())
