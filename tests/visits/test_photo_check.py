"""The upload check decodes a JPEG in draft mode (1/8 scale): it must still read every byte (a file cut
short or damaged anywhere is refused) and still report the size the photo is displayed at."""

import io
import random

import pytest
from PIL import Image

from visits.photos.images import ImageInfo, PhotoRejected, check_upload, clean_image


def camera_like(size=(1600, 1200), orientation: int | None = None) -> bytes:
    """A noisy JPEG large enough for draft mode to scale it down, with an EXIF orientation."""
    picture = Image.effect_noise(size, 60).convert("RGB")
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=90, exif=exif)
    return out.getvalue()


@pytest.mark.parametrize(("orientation", "displayed"), [(None, (1600, 1200)), (1, (1600, 1200)), (6, (1200, 1600))])
def test_the_check_reports_the_displayed_size_of_the_full_image(orientation, displayed):
    data = camera_like(orientation=orientation)
    assert check_upload(data) == ImageInfo("jpeg", *displayed)
    with Image.open(io.BytesIO(clean_image(data))) as clean:  # the job's original agrees
        assert clean.size == displayed


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.99])
def test_a_jpeg_cut_anywhere_is_refused_by_the_check(keep):
    data = camera_like()
    with pytest.raises(PhotoRejected) as caught:
        check_upload(data[: int(len(data) * keep)])
    assert caught.value.code == "corrupt_image"


def test_a_jpeg_whose_end_marker_is_replaced_by_garbage_is_refused():
    data = bytearray(camera_like())
    rng = random.Random(7)
    tail = len(data) // 20
    data[-tail:] = bytes(rng.randrange(256) for _ in range(tail))  # the last 5 %: scan data and EOI gone
    with pytest.raises(PhotoRejected) as caught:
        check_upload(bytes(data))
    assert caught.value.code == "corrupt_image"
