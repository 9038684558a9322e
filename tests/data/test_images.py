import io

import numpy as np
import pytest
from PIL import Image

from img2loc.data.images import ImageError, open_image
from tests.data.conftest import jpeg_bytes


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, "PNG")
    return buf.getvalue()


def test_good_inputs_become_rgb(rng):
    cases = {
        "jpeg": jpeg_bytes(rng),
        "rgba": _png(rng.integers(0, 255, (8, 8, 4), dtype=np.uint8)),
        "grey": _png(rng.integers(0, 255, (8, 8), dtype=np.uint8)),
        "16bit": _png(rng.integers(0, 65535, (8, 8), dtype=np.uint16)),
    }
    cmyk = io.BytesIO()
    Image.new("CMYK", (8, 8), (10, 20, 30, 40)).save(cmyk, "JPEG")
    cases["cmyk"] = cmyk.getvalue()
    pal = Image.new("P", (8, 8))
    pal.info["transparency"] = 0
    buf = io.BytesIO()
    pal.save(buf, "PNG", transparency=0)
    cases["palette"] = buf.getvalue()
    gif = io.BytesIO()
    frames = [Image.new("P", (8, 8), i) for i in range(3)]
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:])
    cases["gif"] = gif.getvalue()
    for name, data in cases.items():
        im = open_image(data)
        assert im.mode == "RGB", name
        assert im.size == ((64, 48) if name == "jpeg" else (8, 8)), name


def test_exif_orientation_applied(rng):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 on display
    im = open_image(jpeg_bytes(rng, (40, 20), exif=exif))
    assert im.size == (20, 40)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"<!DOCTYPE html><html>403 Forbidden</html>", "HTML"),
        (b"hello, this is text", "not a recognised image"),
    ],
)
def test_bad_bytes(data, match):
    with pytest.raises(ImageError, match=match):
        open_image(data)


def test_truncated_and_bomb(rng, tmp_path):
    data = jpeg_bytes(rng, (200, 200))
    with pytest.raises(ImageError, match="truncated"):
        open_image(data[: len(data) // 2])
    big = io.BytesIO()
    Image.new("L", (12000, 9000)).save(big, "PNG")  # 108 MP of zeros: tiny file
    with pytest.raises(ImageError, match="bomb"):
        open_image(big.getvalue())
    with pytest.raises(ImageError, match="no such file"):
        open_image(tmp_path / "missing.jpg")
