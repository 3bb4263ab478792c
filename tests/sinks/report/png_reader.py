"""A tiny PNG reader for the render test (8-bit RGB/RGBA, non-interlaced): size and pixels.

numpy handles the None/Sub/Up filters; Average and Paeth rows (a minority in browser
screenshots) are unfiltered byte by byte.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np


def read_png(path) -> np.ndarray:
    """-> uint8 array (height, width, channels)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, color, _c, _f, interlace = header
    if depth != 8 or color not in (2, 6) or interlace:
        raise ValueError(f"{path}: only 8-bit RGB/RGBA non-interlaced PNGs are supported")
    bpp = 3 if color == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        ftype, line = raw[y, 0], raw[y, 1:]
        if ftype == 0:
            row = line.copy()
        elif ftype == 1:
            row = (np.cumsum(line.reshape(width, bpp).astype(np.int64), axis=0) % 256).astype(np.uint8).reshape(-1)
        elif ftype == 2:
            row = line + prev  # uint8 arithmetic wraps mod 256
        elif ftype in (3, 4):
            cur = bytearray(line.tobytes())
            up = prev.tobytes()
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = up[i]
                if ftype == 3:
                    cur[i] = (cur[i] + ((a + b) >> 1)) & 0xFF
                else:
                    c = up[i - bpp] if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    cur[i] = (cur[i] + pred) & 0xFF
            row = np.frombuffer(bytes(cur), dtype=np.uint8)
        else:
            raise ValueError(f"{path}: bad filter type {ftype} in row {y}")
        out[y] = row
        prev = row
    return out.reshape(height, width, bpp)
