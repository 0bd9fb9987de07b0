"""Tile arithmetic for the map tests (web Mercator, XYZ scheme)."""

import math


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y


def tiles_covering(bbox: tuple[float, float, float, float], z: int) -> list[tuple[int, int, int]]:
    x0, y1 = tile_xy(bbox[0], bbox[1], z)
    x1, y0 = tile_xy(bbox[2], bbox[3], z)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def tile_path(town, z: int) -> str:
    """`z/x/y` of the tile holding the centre of the town's 自治会 (its household, its resource)."""
    from tests.factories import centre

    lon, lat = centre(town.neighborhood)
    x, y = tile_xy(lon, lat, z)
    return f"{z}/{x}/{y}"
