"""Great-circle distances (haversine on the mean Earth radius), the one place they are computed.

No road network is used offline: planning orders stops by these distances, and the sync flags a
visit recorded far from its household by them. At a few hundred metres the haversine agrees with
PostGIS's spheroid distance to well under a percent."""

import math

import numpy as np

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Metres between two points given in degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def matrix_m(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """All-pairs metres (int64, rounded) of the given points."""
    phi = np.radians(lat)
    lam = np.radians(lon)
    dp = phi[:, None] - phi[None, :]
    dl = lam[:, None] - lam[None, :]
    h = np.sin(dp / 2) ** 2 + np.cos(phi)[:, None] * np.cos(phi)[None, :] * np.sin(dl / 2) ** 2
    d = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return np.rint(d).astype(np.int64)
