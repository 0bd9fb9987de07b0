"""Photo uploads: validation and re-encoding of the pictures outreach workers take on their tablets.

Pure image processing: bytes in, bytes out. No models, no database, no storage.

* What a file is gets decided by its bytes (magic numbers), never by its name or Content-Type. The
  allowlist is JPEG, PNG, WebP and HEIC (what iPad cameras produce); anything else is refused before
  Pillow sees it, and Pillow is then only allowed the one decoder the bytes claimed
  (``Image.open(..., formats=[...])``), so no other plugin (EPS → Ghostscript, PSD, TIFF, …) ever runs.
* Limits: the byte size is checked before anything is parsed; the pixel count is checked from the
  header before decoding (our own limit, not Pillow's global ``MAX_IMAGE_PIXELS``), and Pillow's
  decompression-bomb warning is raised as an error as a second line. (``warnings.catch_warnings`` changes
  process-wide state and is not thread-safe; our own pixel check, which runs first and is lower than
  Pillow's default, is what the limit actually rests on.)
* Truncated or corrupt data is refused: the image is fully decoded (``load()``) inside the guards and
  ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left alone.
* The stored "clean original" is the EXIF orientation applied, then a brand-new image built from the
  pixels alone, encoded as JPEG: no EXIF (GPS!), XMP, ICC profile, comments, PNG text chunks or bytes
  appended after the image survive. Resized copies are made from that clean JPEG the same way.

Failures raise :class:`PhotoRejected` with a machine ``code`` (``too_large`` → HTTP 413;
``unsupported_format``, ``decompression_bomb``, ``corrupt_image`` → 422) and a message for the API body.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import warnings
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageOps

from backend.errors import TsunaguError

logger = logging.getLogger("tsunagu.photos")

DEFAULT_MAX_BYTES: Final = 15 * 1024 * 1024  # an iPad HEIC is 1–4 MB, a 12 MP JPEG 3–8 MB
DEFAULT_MAX_PIXELS: Final = 40_000_000  # 40 MP: above any tablet camera (12 MP), far below a bomb
VARIANT_SOURCE_MAX_BYTES: Final = 64 * 1024 * 1024  # make_variant's input is our own clean JPEG
JPEG_QUALITY: Final = 90
VARIANT_QUALITY: Final = 85
RESIZED_LONG_EDGE: Final = 1600
THUMBNAIL_LONG_EDGE: Final = 320
CHECK_DRAFT_EDGE: Final = 1  # check_upload: the JPEG decoder's smallest scale (1/8)
FLATTEN_BACKGROUND: Final = (255, 255, 255)

# Our format name → the Pillow decoder it may use → the Image.format values that decoder may report.
# (A JPEG with a Multi-Picture index, as some phones write, comes back from the JPEG decoder as "MPO";
# only its first frame is used.)
PILLOW_DECODER: Final = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "heic": "HEIF"}
PILLOW_REPORTS: Final = {"jpeg": {"JPEG", "MPO"}, "png": {"PNG"}, "webp": {"WEBP"}, "heic": {"HEIF"}}

# HEIF brands (ISO/IEC 23008-12). A file is taken as HEIC only if its ftyp box (major or compatible
# brands) names an HEVC brand: heic/heix (HEVC still image, 8-bit / 10-bit and 4:2:2/4:4:4), heim/heis
# (multi-layer / scalable HEVC; the base layer decodes the same way), hevc/hevx (HEVC image sequences;
# only the primary still image is decoded, and a file without one fails as corrupt). The generic structural brands mif1/msf1 alone are NOT enough:
# they say "HEIF container" but not which codec is inside, and the same container carries AVIF, JPEG
# or uncompressed items; we only want libheif's HEVC path. AVIF brands are refused outright, even
# alongside an HEVC brand, because AVIF is not on the allowlist.
HEVC_BRANDS: Final = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
REFUSED_BRANDS: Final = frozenset({b"avif", b"avis"})
_MAX_FTYP_SIZE: Final = 256  # real ftyp boxes are 20–40 bytes; a huge one is not a camera file

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_WEBP_CHUNKS: Final = (b"VP8 ", b"VP8L", b"VP8X")
_SIXTEEN_BIT_GREY: Final = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_ALPHA_MODES: Final = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

ALLOWED_FORMATS_TEXT: Final = "JPEG, PNG, WebP or HEIC"


class PhotoRejected(TsunaguError):
    """An upload that is not an acceptable photo. ``code`` is one of :data:`PhotoRejected.CODES`;
    ``status`` is the HTTP status the API answers with (413 for ``too_large``, 422 otherwise)."""

    CODES: Final = frozenset({"too_large", "unsupported_format", "decompression_bomb", "corrupt_image"})
    status = 422
    code = "corrupt_image"
    default_message = "The file is not a readable image."

    def __init__(self, code: str, message: str, **details: object) -> None:
        if code not in self.CODES:
            raise ValueError(f"unknown PhotoRejected code {code!r}")
        super().__init__(message, code=code, details=details or None)
        self.status = 413 if code == "too_large" else 422


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What :func:`check_upload` learnt: our format name and the size as displayed, i.e. after the EXIF
    orientation (the size :func:`clean_image` will produce)."""

    format: str
    width: int
    height: int


# --------------------------------------------------------------------------------------------------
# Format sniffing


def sniff_format(data: bytes) -> str | None:
    """``"jpeg"``, ``"png"``, ``"webp"`` or ``"heic"`` from the leading bytes; ``None`` for anything
    else (GIF, BMP, TIFF, PDF, EPS, AVIF, text, …)."""
    head = bytes(data[:_MAX_FTYP_SIZE])
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(_PNG_SIGNATURE):
        return "png"
    if len(head) >= 16 and head[:4] == b"RIFF" and head[8:12] == b"WEBP" and head[12:16] in _WEBP_CHUNKS:
        return "webp"
    brands = _ftyp_brands(head)
    if brands and brands & HEVC_BRANDS and not brands & REFUSED_BRANDS:
        return "heic"
    return None


def _ftyp_brands(head: bytes) -> frozenset[bytes] | None:
    """The major and compatible brands of an ISO-BMFF ``ftyp`` box at offset 0, or ``None`` when the
    bytes do not start with a well-formed one."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return None
    size = int.from_bytes(head[:4], "big")
    # size 0 ("to end of file") and 1 (64-bit size follows) are legal ISO-BMFF but never used for ftyp.
    if size < 16 or size > len(head) or (size - 16) % 4:
        return None
    major = head[8:12]
    compatible = (head[i : i + 4] for i in range(16, size, 4))
    return frozenset({major, *compatible})


# --------------------------------------------------------------------------------------------------
# Limits


def _setting(name: str, default: int) -> int:
    """A limit from Django settings when they are configured and define it, else the default."""
    try:
        from django.conf import settings
    except ImportError:  # pragma: no cover - Django is a dependency, but the module need not care
        return default
    if not settings.configured:
        return default
    return int(getattr(settings, name, default))


def _limits(max_bytes: int | None, max_pixels: int | None) -> tuple[int, int]:
    if max_bytes is None:
        max_bytes = _setting("PHOTO_MAX_BYTES", DEFAULT_MAX_BYTES)
    if max_pixels is None:
        max_pixels = _setting("PHOTO_MAX_PIXELS", DEFAULT_MAX_PIXELS)
    if max_bytes < 1 or max_pixels < 1:
        raise ValueError("max_bytes and max_pixels must be positive")
    return max_bytes, max_pixels


@functools.cache
def _register_heif() -> None:
    """pillow-heif's opener, registered once per process, on first use."""
    import pillow_heif

    pillow_heif.register_heif_opener()


# --------------------------------------------------------------------------------------------------
# Decoding under guards


def _megapixels(pixels: int) -> str:
    if pixels < 100_000:
        return f"{pixels} pixels"
    return f"{pixels / 1_000_000:.1f}".rstrip("0").rstrip(".") + " megapixels"


def _decode(
    data: bytes, *, max_bytes: int, max_pixels: int, draft_long_edge: int | None = None
) -> tuple[str, Image.Image, tuple[int, int]]:
    """Check, open and fully decode ``data``. Returns our format name, the loaded image (the caller
    closes it) and the size its header states. ``draft_long_edge`` lets the JPEG decoder scale down
    by a power of two while decoding when only a smaller copy is wanted (the loaded image is then
    smaller than the header's size); every byte of the entropy-coded data is still decoded, so a
    truncated or corrupt file fails the same way."""
    size = len(data)
    if size > max_bytes:
        raise PhotoRejected(
            "too_large",
            f"The photo is {size} bytes; the limit is {max_bytes} bytes.",
            size=size,
            max_bytes=max_bytes,
        )
    fmt = sniff_format(data)
    if fmt is None:
        raise PhotoRejected(
            "unsupported_format",
            f"The file is not a {ALLOWED_FORMATS_TEXT} image.",
            allowed=sorted(PILLOW_DECODER),
        )
    if fmt == "heic":
        _register_heif()

    im: Image.Image | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=[PILLOW_DECODER[fmt]])
            if im.format not in PILLOW_REPORTS[fmt]:  # cannot happen with a one-decoder list; be sure
                raise PhotoRejected("unsupported_format", f"The file is not a {ALLOWED_FORMATS_TEXT} image.")
            width, height = im.size
            if width < 1 or height < 1:
                raise PhotoRejected("corrupt_image", "The image has no pixels.")
            if width * height > max_pixels:
                raise _bomb(width, height, max_pixels)
            if draft_long_edge is not None and fmt == "jpeg":
                scale = draft_long_edge / max(width, height)
                if scale < 1:
                    im.draft(None, (max(1, round(width * scale)), max(1, round(height * scale))))
            im.load()
            return fmt, im, (width, height)
    except PhotoRejected:
        _close(im)
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        w, h = im.size if im is not None else (0, 0)
        _close(im)
        raise _bomb(w, h, max_pixels) from exc
    except MemoryError as exc:
        _close(im)
        raise PhotoRejected("decompression_bomb", "The image needs too much memory to decode.") from exc
    except Exception as exc:  # whatever a decoder raises on bad data: OSError, SyntaxError, ValueError, …
        _close(im)
        logger.info("photo refused as corrupt (%s): %s: %s", fmt, type(exc).__name__, exc)
        raise PhotoRejected(
            "corrupt_image", f"The {fmt.upper()} file is truncated or corrupt and cannot be read.", format=fmt
        ) from exc


def _bomb(width: int, height: int, max_pixels: int) -> PhotoRejected:
    if width and height:
        message = (
            f"The image is {width}×{height} pixels ({_megapixels(width * height)}); "
            f"the limit is {_megapixels(max_pixels)}."
        )
        return PhotoRejected("decompression_bomb", message, width=width, height=height, max_pixels=max_pixels)
    return PhotoRejected("decompression_bomb", f"The image is larger than {_megapixels(max_pixels)}.")


def _close(im: Image.Image | None) -> None:
    if im is not None:
        im.close()


# --------------------------------------------------------------------------------------------------
# Orientation, rebuild, encode


def _orient(im: Image.Image) -> Image.Image:
    """The image as it should be displayed (EXIF orientation applied; HEIC arrives already rotated by
    libheif, with its orientation tag reset). EXIF that cannot be parsed is ignored: the metadata is
    thrown away anyway, and refusing a photo over it would help nobody."""
    try:
        ImageOps.exif_transpose(im, in_place=True)  # in place: no second copy of a large image
    except Exception as exc:
        logger.info("EXIF orientation ignored: %s: %s", type(exc).__name__, exc)
    return im


def _displayed_size(im: Image.Image, size: tuple[int, int]) -> tuple[int, int]:
    """``size`` (the header's) as displayed: swapped when the EXIF orientation turns the image."""
    width, height = size
    try:
        orientation = im.getexif().get(0x0112)
    except Exception:
        return width, height
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any decoded mode → 8-bit RGB; transparency is flattened onto white (JPEG has no alpha)."""
    if im.mode in _SIXTEEN_BIT_GREY:
        # 16-bit greyscale PNG: scale 0–65535 to 0–255 (a plain convert would clip everything bright).
        grey = im.convert("I").point(lambda v: v * (1 / 257)).convert("L")
        grey.info.pop("transparency", None)  # a 16-bit tRNS value means nothing after scaling
        im = grey
    if im.mode in _ALPHA_MODES or (im.mode in ("P", "L", "RGB", "1") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, FLATTEN_BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if im.mode == "RGB":
        return im
    return im.convert("RGB")


def _rebuild(im: Image.Image) -> Image.Image:
    """A brand-new RGB image holding only the pixels: nothing of ``im.info`` (EXIF, XMP, ICC, comments,
    text chunks, …) is carried over."""
    rgb = _to_rgb(im)
    clean = Image.new("RGB", rgb.size)
    clean.paste(rgb)
    return clean


def _encode_jpeg(im: Image.Image, quality: int, *, optimize: bool) -> bytes:
    """``optimize`` computes Huffman tables for this image: a few per cent smaller, at the cost of a
    second pass over coefficients held in memory (for a 12 MP original: about 0.2 s and tens of MB,
    for 2 % of its size), so the full-size original is written without it and the small copies with."""
    out = io.BytesIO()
    # Deliberately no exif=, icc_profile=, comment= or xmp= arguments.
    im.save(out, format="JPEG", quality=quality, optimize=optimize)
    return out.getvalue()


def _resize_to_long_edge(im: Image.Image, long_edge: int) -> Image.Image:
    width, height = im.size
    if max(width, height) <= long_edge:
        return im  # never upscale
    scale = long_edge / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


# --------------------------------------------------------------------------------------------------
# Public API


def check_upload(data: bytes, *, max_bytes: int | None = None, max_pixels: int | None = None) -> ImageInfo:
    """Validate an upload without producing anything: size in bytes, format by its bytes, pixel count
    from the header, then a decode of every byte under the bomb guard (a JPEG at 1/8 scale: draft mode
    skips the pixels, not the data). Raises :class:`PhotoRejected`.

    ``max_bytes``/``max_pixels`` default to ``settings.PHOTO_MAX_BYTES``/``PHOTO_MAX_PIXELS`` when
    defined, else :data:`DEFAULT_MAX_BYTES` (15 MiB) and :data:`DEFAULT_MAX_PIXELS` (40 MP)."""
    max_bytes, max_pixels = _limits(max_bytes, max_pixels)
    # Only whether it decodes is wanted, not the pixels: a JPEG is decoded at 1/8 of its size
    # (draft mode), which reads every byte of it as a full decode does, in 1/64 of the memory.
    fmt, im, size = _decode(data, max_bytes=max_bytes, max_pixels=max_pixels, draft_long_edge=CHECK_DRAFT_EDGE)
    with im:
        width, height = _displayed_size(im, size)
    return ImageInfo(format=fmt, width=width, height=height)


def clean_image(data: bytes, *, max_bytes: int | None = None, max_pixels: int | None = None) -> bytes:
    """The "clean original" to store: validated as :func:`check_upload` does, EXIF orientation applied,
    rebuilt from its pixels alone and encoded as a JPEG (quality 90) with no metadata at all.
    Raises :class:`PhotoRejected`."""
    max_bytes, max_pixels = _limits(max_bytes, max_pixels)
    _fmt, im, _size = _decode(data, max_bytes=max_bytes, max_pixels=max_pixels)
    with im:
        clean = _rebuild(_orient(im))
    with clean:
        return _encode_jpeg(clean, JPEG_QUALITY, optimize=False)


def make_variant(
    clean_jpeg: bytes, *, long_edge: int, max_bytes: int | None = None, max_pixels: int | None = None
) -> bytes:
    """A JPEG whose longer side is at most ``long_edge`` pixels (never upscaled), made from a clean
    JPEG (the output of :func:`clean_image`): :data:`RESIZED_LONG_EDGE` for the resized copy,
    :data:`THUMBNAIL_LONG_EDGE` for the thumbnail. The input goes through the same guards, orientation
    and rebuild, so the output carries no metadata even if the input were not clean.

    ``max_pixels`` defaults as for :func:`clean_image`; ``max_bytes`` defaults to
    :data:`VARIANT_SOURCE_MAX_BYTES`, since a clean original of a large, detailed photo at quality 90
    may be bigger than the upload it came from."""
    if isinstance(long_edge, bool) or not isinstance(long_edge, int) or long_edge < 1:
        raise ValueError("long_edge must be a positive integer")
    max_bytes, max_pixels = _limits(VARIANT_SOURCE_MAX_BYTES if max_bytes is None else max_bytes, max_pixels)
    _fmt, im, _size = _decode(clean_jpeg, max_bytes=max_bytes, max_pixels=max_pixels, draft_long_edge=long_edge)
    with im:
        oriented = _orient(im)
        resized = _resize_to_long_edge(oriented, long_edge)
        clean = _rebuild(resized)
    with clean:
        return _encode_jpeg(clean, VARIANT_QUALITY, optimize=True)


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 lowercase hex digits (for de-duplication and integrity)."""
    return hashlib.sha256(data).hexdigest()
