"""A small reader of Mapbox Vector Tiles (protobuf, vector-tile spec 2.1) for the tests: layers,
features with their id, type, properties and decoded geometry in tile coordinates. Enough to check
what a tile holds; not a general protobuf library."""

import struct
from dataclasses import dataclass, field


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) for each field of a message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _packed(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _value(buf: bytes):
    for number, _wire, v in _fields(buf):
        if number == 1:
            return v.decode()
        if number == 2:
            return struct.unpack("<f", v)[0]
        if number == 3:
            return struct.unpack("<d", v)[0]
        if number in (4, 5):
            return v if number == 5 or v < 2**63 else v - 2**64
        if number == 6:
            return _zigzag(v)
        if number == 7:
            return bool(v)
    return None


def _geometry(commands: list[int]) -> list[list[tuple[int, int]]]:
    """Decode the command stream into parts (each a list of points; rings closed implicitly)."""
    parts, current, x, y, i = [], [], 0, 0, 0
    while i < len(commands):
        cmd, count = commands[i] & 7, commands[i] >> 3
        i += 1
        if cmd == 7:  # ClosePath
            continue
        for _ in range(count):
            x += _zigzag(commands[i])
            y += _zigzag(commands[i + 1])
            i += 2
            if cmd == 1:  # MoveTo starts a part
                if current:
                    parts.append(current)
                current = [(x, y)]
            else:
                current.append((x, y))
    if current:
        parts.append(current)
    return parts


@dataclass
class Feature:
    id: int | None
    type: int  # 1 point, 2 line, 3 polygon
    properties: dict
    geometry: list = field(default_factory=list)


@dataclass
class Layer:
    name: str
    extent: int
    features: list[Feature]


def decode(tile: bytes) -> dict[str, Layer]:
    layers = {}
    for number, _wire, raw in _fields(tile):
        if number != 3:
            continue
        name, extent, keys, values, features = "", 4096, [], [], []
        for n, _w, v in _fields(raw):
            if n == 1:
                name = v.decode()
            elif n == 5:
                extent = v
            elif n == 3:
                keys.append(v.decode())
            elif n == 4:
                values.append(_value(v))
            elif n == 2:
                features.append(v)
        decoded = []
        for raw_feature in features:
            fid, ftype, tags, geom = None, 0, [], []
            for n, _w, v in _fields(raw_feature):
                if n == 1:
                    fid = v
                elif n == 2:
                    tags = _packed(v)
                elif n == 3:
                    ftype = v
                elif n == 4:
                    geom = _packed(v)
            props = {keys[tags[k]]: values[tags[k + 1]] for k in range(0, len(tags), 2)}
            decoded.append(Feature(fid, ftype, props, _geometry(geom)))
        layers[name] = Layer(name, extent, decoded)
    return layers
