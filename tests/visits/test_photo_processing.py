"""visits.photos.images: format allowlist by bytes, limits, corrupt data, EXIF orientation, metadata stripping
and resized copies. Pure image processing: no database. Every image is made in memory."""

import hashlib
import io
import json
import random
import shutil
import struct
import subprocess
import warnings
import zlib

import pytest
from PIL import EpsImagePlugin, Image, ImageCms, ImageFile, PngImagePlugin

from backend.errors import TsunaguError
from visits.photos import images as photos
from visits.photos.images import (
    ImageInfo,
    PhotoRejected,
    check_upload,
    clean_image,
    make_variant,
    sha256_hex,
    sniff_format,
)

RED, BLUE, WHITE = (230, 20, 20), (20, 20, 230), (255, 255, 255)
GPS_LATITUDE = (35.0, 41.0, 22.2)  # somewhere in 東京; must not survive
SECRET = "tsunagu-secret-marker"
XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
    f' exif:GPSLatitude="35,41.37N" exif:GPSLongitude="139,41.5E" dc:creator="{SECRET}"/>'
    "</rdf:RDF></x:xmpmeta>"
)
EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n"
    b"newpath 0 0 moveto 10 10 lineto stroke\n%%EOF\n"
)


# --------------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture(scope="module", autouse=True)
def _heif_opener():
    """pillow-heif's opener, for making HEIC test files (the module registers it itself on use)."""
    photos._register_heif()


def picture(size=(40, 20), mode="RGB", block=RED, background=BLUE) -> Image.Image:
    """A two-colour picture: a block of a quarter of the width/half the height in the top-left corner."""
    img = Image.new(mode, size, background)
    w, h = size
    img.paste(block, (0, 0, max(1, w // 4), max(1, h // 2)))
    return img


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    pillow_format = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "heic": "HEIF"}.get(fmt, fmt)
    if fmt == "jpeg" and "quality" not in params:
        params["quality"] = 95
    if fmt in ("webp", "heic") and "quality" not in params:
        params["quality"] = 95
    img.save(buf, format=pillow_format, **params)
    return buf.getvalue()


def exif_with(orientation: int | None = None, gps: bool = False) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Apple"  # Make
    exif[0x0110] = "iPad Pro"  # Model
    exif[0x0131] = SECRET  # Software
    if orientation is not None:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {  # GPS IFD
            1: "N",  # GPSLatitudeRef
            2: GPS_LATITUDE,  # GPSLatitude
            3: "E",  # GPSLongitudeRef
            4: (139.0, 41.0, 30.1),  # GPSLongitude
            6: 40.5,  # GPSAltitude
        }
    return exif


def icc_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_insert_after_ihdr(png: bytes, *chunks: bytes) -> bytes:
    end_of_ihdr = 8 + 8 + 13 + 4
    assert png[12:16] == b"IHDR"
    return png[:end_of_ihdr] + b"".join(chunks) + png[end_of_ihdr:]


def bilevel_png(width: int, height: int) -> bytes:
    """A real, valid, all-black 1-bit PNG of any size: 20000×20000 compresses to ~50 KB."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(9)
    idat = compressor.compress(row * height) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    )


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x00\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body


def open_jpeg(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data), formats=["JPEG"])
    assert img.format == "JPEG"
    img.load()
    return img


def near(actual, expected, tolerance=60) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def rejected(code: str, data: bytes, **kwargs) -> PhotoRejected:
    with pytest.raises(PhotoRejected) as caught:
        clean_image(data, **kwargs)
    assert caught.value.code == code, caught.value.message
    with pytest.raises(PhotoRejected) as caught_check:
        check_upload(data, **kwargs)
    assert caught_check.value.code == code
    return caught.value


def assert_no_metadata(out: bytes, tmp_path) -> None:
    """Pillow and exiftool both see a bare JPEG: JFIF header, pixels, EOI, nothing else."""
    assert out[:3] == b"\xff\xd8\xff"
    assert out.endswith(b"\xff\xd9")
    assert SECRET.encode() not in out
    assert b"Exif\x00\x00" not in out
    assert b"ICC_PROFILE" not in out
    assert b"http://ns.adobe.com/xap/1.0/" not in out
    img = open_jpeg(out)
    assert len(img.getexif()) == 0
    for key in ("exif", "icc_profile", "comment", "xmp", "photoshop", "adobe", "mp", "mpoffset"):
        assert key not in img.info, key
    # The only application segment is the JFIF header libjpeg writes; no APP1 (EXIF/XMP), APP2
    # (ICC/MPF), APP13 (IPTC) and no COM.
    assert [(marker, payload[:5]) for marker, payload in img.applist] == [("APP0", b"JFIF\x00")]

    if shutil.which("exiftool") is None:
        pytest.skip("exiftool is not installed; Pillow-level checks passed")
    path = tmp_path / "clean.jpg"
    path.write_bytes(out)
    result = subprocess.run(["exiftool", "-j", "-G", "-a", "-u", str(path)], capture_output=True, check=True)
    (tags,) = json.loads(result.stdout)
    groups = {key.split(":", 1)[0] for key in tags if ":" in key}
    assert groups <= {"ExifTool", "File", "JFIF", "Composite"}, sorted(tags)
    for key in tags:
        assert "GPS" not in key, key
        assert not key.startswith(("EXIF:", "XMP", "ICC_Profile", "IPTC", "Photoshop", "MakerNotes")), key
    assert "File:Comment" not in tags
    assert SECRET not in json.dumps(tags)


# --------------------------------------------------------------------------------------------------
# Allowed formats


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "heic"])
def test_each_allowed_format_is_accepted_and_becomes_a_jpeg(fmt):
    data = encode(picture((64, 48)), fmt)
    assert sniff_format(data) == fmt
    assert check_upload(data) == ImageInfo(format=fmt, width=64, height=48)
    out = clean_image(data)
    img = open_jpeg(out)
    assert (img.size, img.mode) == ((64, 48), "RGB")
    assert near(img.getpixel((2, 2)), RED)
    assert near(img.getpixel((60, 44)), BLUE)
    # the pixel limit is checked from the header, whatever the format
    assert rejected("decompression_bomb", data, max_pixels=64 * 48 - 1).details["width"] == 64


def test_the_format_comes_from_the_bytes_not_the_name():
    """The API is bytes-only: a PNG that the client called photo.jpg / image/jpeg is still a PNG."""
    data = encode(picture(), "png")
    assert sniff_format(data) == "png"
    assert check_upload(data).format == "png"
    assert open_jpeg(clean_image(data)).size == (40, 20)


def test_an_mpo_jpeg_is_accepted_and_its_first_frame_kept():
    buf = io.BytesIO()
    picture((48, 32)).save(
        buf, format="MPO", save_all=True, append_images=[Image.new("RGB", (48, 32), WHITE)]
    )
    data = buf.getvalue()
    assert Image.open(io.BytesIO(data)).format == "MPO"
    assert check_upload(data).format == "jpeg"
    img = open_jpeg(clean_image(data))
    assert img.size == (48, 32)
    assert near(img.getpixel((2, 2)), RED)


def test_an_animated_png_keeps_its_first_frame_only():
    frames = [picture((32, 32)), Image.new("RGB", (32, 32), WHITE)]
    buf = io.BytesIO()
    frames[0].save(buf, format="PNG", save_all=True, append_images=frames[1:])
    img = open_jpeg(clean_image(buf.getvalue()))
    assert near(img.getpixel((2, 2)), RED)
    assert getattr(img, "n_frames", 1) == 1


def test_image_open_is_only_ever_given_the_one_sniffed_decoder(monkeypatch):
    calls = []
    real_open = Image.open

    def spy(fp, mode="r", formats=None):
        calls.append(formats)
        return real_open(fp, mode, formats)

    monkeypatch.setattr(Image, "open", spy)
    for fmt, decoder in photos.PILLOW_DECODER.items():
        calls.clear()
        clean_image(encode(picture(), fmt))
        assert calls == [[decoder]], fmt


# --------------------------------------------------------------------------------------------------
# Everything else is refused by its bytes


def _gif() -> bytes:
    return encode(picture().convert("P"), "GIF")


def _bmp() -> bytes:
    return encode(picture(), "BMP")


def _tiff() -> bytes:
    return encode(picture(), "TIFF")


REFUSED = {
    "gif": _gif,
    "bmp": _bmp,
    "tiff": _tiff,
    "pdf": lambda: b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
    "eps": lambda: EPS,
    "eps-dos-binary": lambda: b"\xc5\xd0\xd3\xc6" + struct.pack("<IIIIII", 30, len(EPS), 0, 0, 0, 0) + EPS,
    "random": lambda: random.Random(20260401).randbytes(4096),
    "empty": lambda: b"",
    "text": lambda: "自治会の見守り記録です。".encode(),
    "svg": lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "avif": lambda: ftyp(b"avif", b"mif1", b"avif", b"miaf") + b"\x00" * 64,
    "heif-without-hevc-brand": lambda: ftyp(b"mif1", b"mif1", b"miaf") + b"\x00" * 64,
    "webp-header-only": lambda: b"RIFF\x10\x00\x00\x00WEBPJUNK" + b"\x00" * 16,
    "wav": lambda: b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 32,
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_other_formats_are_refused_as_unsupported(name):
    data = REFUSED[name]()
    assert sniff_format(data) is None
    error = rejected("unsupported_format", data)
    assert error.status == 422
    assert "JPEG, PNG, WebP or HEIC" in error.message


def test_eps_never_reaches_pillow_let_alone_ghostscript(monkeypatch):
    def no_ghostscript(*args, **kwargs):
        raise AssertionError("Ghostscript must never run")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", no_ghostscript)
    # pretend gs is installed, so that a load would reach the stub above rather than stop earlier
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: True)
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **kw: opened.append(a) or real_open(*a, **kw))

    rejected("unsupported_format", EPS)
    assert opened == []  # sniffing refused it before Pillow saw a byte

    # The sample really is EPS to an unrestricted Pillow (which would run Ghostscript on load) …
    with real_open(io.BytesIO(EPS)) as img:
        assert img.format == "EPS"
    # … and our restricted decoder list cannot open it at all.
    with pytest.raises(Image.UnidentifiedImageError):
        real_open(io.BytesIO(EPS), formats=list(photos.PILLOW_DECODER.values()))


def test_eps_behind_a_fake_magic_is_corrupt_not_rendered(monkeypatch):
    """Bytes that start like a JPEG but are EPS inside: only the JPEG decoder is tried, and fails."""
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **kw: pytest.fail("Ghostscript ran"))
    rejected("corrupt_image", b"\xff\xd8\xff\xe0" + EPS)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (ftyp(b"heic", b"mif1", b"heic"), "heic"),  # iPhone/iPad
        (ftyp(b"mif1", b"mif1", b"heic", b"miaf"), "heic"),  # major brand generic, HEVC compatible
        (ftyp(b"heix", b"mif1", b"heix"), "heic"),  # 10-bit
        (ftyp(b"hevc", b"msf1", b"hevc"), "heic"),  # HEVC image sequence
        (ftyp(b"heim", b"mif1"), "heic"),
        (ftyp(b"heis", b"mif1"), "heic"),
        (ftyp(b"hevx", b"msf1"), "heic"),
        (ftyp(b"mif1", b"mif1"), None),  # container only: could be AVIF, JPEG, uncompressed …
        (ftyp(b"msf1", b"msf1"), None),
        (ftyp(b"avif", b"mif1", b"avif"), None),
        (ftyp(b"heic", b"avif"), None),  # claims both: AVIF is not allowed
        (ftyp(b"isom", b"mp41", b"mp42"), None),  # an MP4 video
        (ftyp(b"qt  "), None),
        (b"\x00\x00\x00\x0cftypheic", None),  # box smaller than its minimum
        (b"\x00\x00\x10\x00ftypheic\x00\x00\x00\x00mif1", None),  # box larger than the data
        (b"\x00\x00\x00\x01ftypheic\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x18", None),  # 64-bit size
        (b"\x00\x00\x00\x15ftypheic\x00\x00\x00\x00mif1h", None),  # ragged brand list
        (b"\x00\x00\x00\x18moovheic\x00\x00\x00\x00mif1heic", None),  # not an ftyp box
        (b"\xff\xd8\xff\xdb", "jpeg"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8L", "webp"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8X", "webp"),
        (b"\x89PNG\r\n", None),  # signature cut short
        (b"\xff\xd8", None),
        (b"GIF89a", None),
        (b"BM", None),
        (b"II*\x00", None),
        (b"MM\x00*", None),
    ],
)
def test_sniff_format(head, expected):
    assert sniff_format(head) == expected


def test_sniff_format_accepts_memoryview_and_bytearray():
    data = encode(picture(), "png")
    assert sniff_format(bytearray(data)) == "png"
    assert sniff_format(memoryview(data)) == "png"


# --------------------------------------------------------------------------------------------------
# Limits and bad data


def test_too_many_bytes_is_refused_before_anything_is_parsed():
    data = encode(picture(), "jpeg")
    error = rejected("too_large", data, max_bytes=len(data) - 1)
    assert error.status == 413
    assert str(len(data) - 1) in error.message
    # Size comes first: even bytes that are no image at all are "too large", not "unsupported".
    assert rejected("too_large", b"x" * 101, max_bytes=100).code == "too_large"
    assert check_upload(data, max_bytes=len(data)).format == "jpeg"


def test_default_byte_limit_and_settings_override(settings):
    assert photos.DEFAULT_MAX_BYTES == 15 * 1024 * 1024
    data = encode(picture(), "png")
    settings.PHOTO_MAX_BYTES = len(data) - 1
    rejected("too_large", data)
    settings.PHOTO_MAX_BYTES = len(data)
    settings.PHOTO_MAX_PIXELS = 40 * 20 - 1
    rejected("decompression_bomb", data)
    assert check_upload(data, max_pixels=40 * 20).width == 40  # an explicit argument wins


@pytest.fixture(scope="module")
def png_bomb() -> bytes:
    data = bilevel_png(20000, 20000)
    assert len(data) < 100_000  # 400 megapixels in well under 100 KB
    return data


def test_a_decompression_bomb_is_refused(png_bomb):
    error = rejected("decompression_bomb", png_bomb)
    assert error.status == 422
    assert "20000×20000" in error.message or "megapixels" in error.message


def test_the_pixel_limit_does_not_depend_on_pillows_global(monkeypatch, png_bomb):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # someone switched Pillow's check off
    error = rejected("decompression_bomb", png_bomb)
    assert error.details["width"] == 20000
    assert error.details["max_pixels"] == photos.DEFAULT_MAX_PIXELS
    # and an explicit, lower limit applies to ordinary photos too
    small = encode(picture((100, 100)), "jpeg")
    rejected("decompression_bomb", small, max_pixels=100 * 100 - 1)
    assert check_upload(small, max_pixels=100 * 100) == ImageInfo("jpeg", 100, 100)


@pytest.mark.parametrize("pillow_limit", [6000, 1000], ids=["warning", "error"])
def test_pillows_bomb_warning_is_an_error_too(monkeypatch, pillow_limit):
    """Above MAX_IMAGE_PIXELS Pillow only warns (above twice that it raises): both refuse."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)
    data = encode(picture((100, 100)), "png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # even when the process ignores warnings
        rejected("decompression_bomb", data, max_pixels=10**9)


@pytest.mark.parametrize("fmt", ["jpeg", "png", "webp", "heic"])
def test_truncated_data_is_corrupt(fmt):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    noisy = Image.effect_noise((160, 120), 80).convert("RGB")
    data = encode(noisy, fmt)
    cut = data[: len(data) * 6 // 10]
    assert sniff_format(cut) == fmt
    error = rejected("corrupt_image", cut)
    assert error.status == 422


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff" + b"\x00" * 200,
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 200,
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)),
        b"RIFF\x40\x00\x00\x00WEBPVP8 " + b"\x00" * 64,
        ftyp(b"heic", b"mif1", b"heic") + b"\x00" * 200,
    ],
    ids=["jpeg", "png", "png-zero-width", "webp", "heic"],
)
def test_garbage_behind_a_good_magic_is_corrupt(data):
    rejected("corrupt_image", data)


def test_photo_rejected_is_a_domain_error_with_code_status_and_message():
    error = PhotoRejected("too_large", "big")
    assert isinstance(error, TsunaguError)
    assert (error.code, error.status, error.message, str(error)) == ("too_large", 413, "big", "big")
    assert PhotoRejected("corrupt_image", "bad").status == 422
    with pytest.raises(ValueError):
        PhotoRejected("whatever", "no such code")


# --------------------------------------------------------------------------------------------------
# EXIF orientation

# where the top-left block of the stored pixels ends up once displayed, for each EXIF orientation
ORIENTATIONS = {
    1: "top-left",
    2: "top-right",  # mirrored horizontally
    3: "bottom-right",  # rotated 180°
    4: "bottom-left",  # mirrored vertically
    5: "top-left",  # transposed
    6: "top-right",  # rotate 90° clockwise to display
    7: "bottom-right",  # transverse
    8: "bottom-left",  # rotate 90° counter-clockwise to display
}


def corner_pixels(img: Image.Image) -> dict[str, tuple]:
    w, h = img.size
    return {
        "top-left": img.getpixel((2, 2)),
        "top-right": img.getpixel((w - 3, 2)),
        "bottom-left": img.getpixel((2, h - 3)),
        "bottom-right": img.getpixel((w - 3, h - 3)),
    }


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_exif_orientation_is_applied(orientation):
    data = encode(picture((40, 20)), "jpeg", exif=exif_with(orientation))
    img = open_jpeg(clean_image(data))
    expected_size = (20, 40) if orientation >= 5 else (40, 20)
    assert img.size == expected_size
    assert check_upload(data) == ImageInfo("jpeg", *expected_size)
    corners = corner_pixels(img)
    red_corner = ORIENTATIONS[orientation]
    assert near(corners[red_corner], RED), corners
    for name, value in corners.items():
        if name != red_corner:
            assert near(value, BLUE), (name, corners)
    assert len(img.getexif()) == 0  # the tag went with everything else


@pytest.mark.parametrize("fmt", ["png", "webp", "heic"])
def test_exif_orientation_six_in_other_formats(fmt):
    data = encode(picture((40, 20)), fmt, exif=exif_with(6).tobytes())
    img = open_jpeg(clean_image(data))
    assert img.size == (20, 40)
    assert check_upload(data) == ImageInfo(fmt, 20, 40)
    corners = corner_pixels(img)
    assert near(corners["top-right"], RED), corners
    assert near(corners["top-left"], BLUE), corners
    assert near(corners["bottom-right"], BLUE), corners


# --------------------------------------------------------------------------------------------------
# Metadata stripped


def test_jpeg_metadata_and_appended_bytes_are_stripped(tmp_path):
    garbage = (SECRET.encode() + b"\x00") * (1024 // (len(SECRET) + 1) + 1)
    data = (
        encode(
            picture((64, 48)),
            "jpeg",
            exif=exif_with(1, gps=True),
            icc_profile=icc_profile(),
            comment=SECRET,
            xmp=XMP.encode(),
        )
        + garbage[:1024]
    )
    source = Image.open(io.BytesIO(data))  # the sample really carries all of it
    assert source.getexif().get_ifd(0x8825)[2] == GPS_LATITUDE
    assert {"exif", "icc_profile", "comment", "xmp"} <= set(source.info)
    assert not data.endswith(b"\xff\xd9")

    out = clean_image(data)
    assert out.endswith(b"\xff\xd9")
    assert garbage[:64] not in out
    assert_no_metadata(out, tmp_path)


@pytest.mark.parametrize("fmt", ["webp", "heic"])
def test_webp_and_heic_metadata_is_stripped(fmt, tmp_path):
    params = {"exif": exif_with(1, gps=True).tobytes(), "xmp": XMP.encode()}
    if fmt == "webp":
        params["icc_profile"] = icc_profile()
    data = encode(picture((64, 48)), fmt, **params)
    source = Image.open(io.BytesIO(data))
    assert source.getexif().get_ifd(0x8825), "the sample must carry GPS"
    assert "xmp" in source.info
    assert_no_metadata(clean_image(data), tmp_path)


@pytest.mark.parametrize("colour_chunk", ["iCCP", "sRGB"])
def test_png_text_and_colour_chunks_are_stripped(colour_chunk, tmp_path):
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", SECRET)
    text.add_text("Author", SECRET, zip=True)  # zTXt
    text.add_itxt("Description", SECRET, lang="ja", tkey="説明")
    text.add_itxt("XML:com.adobe.xmp", XMP)
    params = {"pnginfo": text, "exif": exif_with(1, gps=True)}
    if colour_chunk == "iCCP":
        params["icc_profile"] = icc_profile()
    data = encode(picture((64, 48)), "png", **params)
    if colour_chunk == "sRGB":
        data = png_insert_after_ihdr(
            data, png_chunk(b"sRGB", b"\x00"), png_chunk(b"gAMA", struct.pack(">I", 45455))
        )
    source = Image.open(io.BytesIO(data))
    source.load()
    assert source.info["Comment"] == SECRET
    assert ("icc_profile" if colour_chunk == "iCCP" else "srgb") in source.info

    assert_no_metadata(clean_image(data), tmp_path)


# --------------------------------------------------------------------------------------------------
# Resized copies


@pytest.fixture(scope="module")
def big_clean() -> bytes:
    return clean_image(encode(picture((4000, 3000)), "jpeg", quality=80))


def test_resized_copy_and_thumbnail_of_a_large_photo(big_clean):
    resized = open_jpeg(make_variant(big_clean, long_edge=photos.RESIZED_LONG_EDGE))
    assert resized.size == (1600, 1200)
    thumb = open_jpeg(make_variant(big_clean, long_edge=photos.THUMBNAIL_LONG_EDGE))
    assert thumb.size == (320, 240)
    assert near(corner_pixels(thumb)["top-left"], RED)
    assert near(corner_pixels(thumb)["bottom-right"], BLUE)


def test_portrait_photos_are_limited_by_their_height():
    clean = clean_image(encode(picture((900, 1200)), "jpeg"))
    assert open_jpeg(make_variant(clean, long_edge=320)).size == (240, 320)


def test_small_photos_are_never_upscaled():
    clean = clean_image(encode(picture((800, 600)), "jpeg"))
    assert open_jpeg(make_variant(clean, long_edge=1600)).size == (800, 600)
    assert open_jpeg(make_variant(clean, long_edge=800)).size == (800, 600)
    assert open_jpeg(make_variant(clean, long_edge=320)).size == (320, 240)


def test_a_variant_of_an_unclean_jpeg_is_still_clean_and_upright(tmp_path):
    data = encode(picture((400, 200)), "jpeg", exif=exif_with(6, gps=True), comment=SECRET) + b"trailing"
    out = make_variant(data, long_edge=100)
    img = open_jpeg(out)
    assert img.size == (50, 100)
    assert near(corner_pixels(img)["top-right"], RED)
    assert_no_metadata(out, tmp_path)


def test_make_variant_refuses_what_clean_image_refuses():
    with pytest.raises(PhotoRejected) as caught:
        make_variant(_gif(), long_edge=320)
    assert caught.value.code == "unsupported_format"
    with pytest.raises(PhotoRejected) as caught:
        make_variant(encode(picture((100, 100)), "jpeg"), long_edge=320, max_pixels=99)
    assert caught.value.code == "decompression_bomb"
    for bad in (0, -1, 1.5, True, "320"):
        with pytest.raises(ValueError):
            make_variant(encode(picture(), "jpeg"), long_edge=bad)


# --------------------------------------------------------------------------------------------------
# Colour modes


def test_rgba_png_is_flattened_on_white():
    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))  # fully transparent black
    img.paste((230, 20, 20, 255), (0, 0, 16, 16))
    out = open_jpeg(clean_image(encode(img, "png")))
    assert out.mode == "RGB"
    assert near(out.getpixel((4, 4)), RED)
    assert near(out.getpixel((28, 28)), WHITE, tolerance=8)


@pytest.mark.parametrize("mode", ["LA", "PA-like", "P-tRNS", "RGB-tRNS", "1", "L", "P"])
def test_other_png_modes_become_rgb(mode):
    base = picture((32, 32))
    if mode == "LA":
        img = base.convert("LA")
    elif mode == "PA-like":
        img = base.convert("RGBA").convert("P")  # Pillow stores alpha as a tRNS palette
    elif mode == "P-tRNS":
        img = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
        img.info["transparency"] = img.getpixel((30, 30))  # the blue becomes transparent
    elif mode == "RGB-tRNS":
        img = base.copy()
        img.info["transparency"] = BLUE
    else:
        img = base.convert(mode)
    data = encode(
        img, "png", **({"transparency": img.info["transparency"]} if "transparency" in img.info else {})
    )
    out = open_jpeg(clean_image(data))
    assert (out.mode, out.size) == ("RGB", (32, 32))
    if mode in ("P-tRNS", "RGB-tRNS"):
        assert near(out.getpixel((30, 30)), WHITE, tolerance=8)  # transparent → white
        assert near(out.getpixel((2, 2)), RED)


def test_rgba_webp_and_heic_are_flattened():
    img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    img.paste((230, 20, 20, 255), (0, 0, 16, 16))
    for fmt in ("webp", "heic"):
        out = open_jpeg(clean_image(encode(img, fmt)))
        assert out.mode == "RGB", fmt
        assert near(out.getpixel((28, 28)), WHITE, tolerance=12), fmt
        assert near(out.getpixel((4, 4)), RED), fmt


def test_cmyk_jpeg_becomes_rgb():
    data = encode(picture((40, 20)).convert("CMYK"), "jpeg")
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = open_jpeg(clean_image(data))
    assert out.mode == "RGB"
    assert near(out.getpixel((2, 2)), RED)
    assert near(out.getpixel((37, 17)), BLUE)


def test_greyscale_jpeg_becomes_rgb():
    out = open_jpeg(clean_image(encode(picture((40, 20)).convert("L"), "jpeg")))
    assert out.mode == "RGB"


def test_sixteen_bit_greyscale_png_is_scaled_not_clipped():
    row = struct.pack("<16H", *[65535] * 8, *[32768] * 8)  # left half white, right half mid-grey
    img = Image.frombytes("I;16", (16, 16), row * 16)
    data = encode(img, "png")
    assert Image.open(io.BytesIO(data)).mode in ("I;16", "I")
    out = open_jpeg(clean_image(data))
    assert (out.mode, out.size) == ("RGB", (16, 16))
    assert near(out.getpixel((2, 8)), WHITE, tolerance=8)
    assert near(out.getpixel((13, 8)), (128, 128, 128), tolerance=12)


def test_sixteen_bit_colour_png_is_handled():
    raw = b"".join(b"\x00" + b"\xff\xff\x00\x00\x80\x00" * 8 for _ in range(8))  # RGB 16-bit
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 16, 2, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(raw))
        + png_chunk(b"IEND", b"")
    )
    out = open_jpeg(clean_image(data))
    assert (out.mode, out.size) == ("RGB", (8, 8))
    assert near(out.getpixel((4, 4)), (255, 0, 128), tolerance=12)


# --------------------------------------------------------------------------------------------------
# Hash


def test_sha256_hex():
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    data = encode(picture(), "jpeg")
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()


def test_cleaning_is_deterministic():
    data = encode(picture((64, 48)), "jpeg", exif=exif_with(6, gps=True))
    assert sha256_hex(clean_image(data)) == sha256_hex(clean_image(data))
