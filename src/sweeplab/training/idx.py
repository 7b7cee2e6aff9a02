"""Read the IDX format (LeCun's MNIST files), plain or gzipped, with checks that name the bad file.

We read the files ourselves because Debian's recompressed .gz files fail torchvision's md5 checks.
"""
from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from sweeplab.errors import DataError

UBYTE = 0x08


def read_idx(path: Path) -> np.ndarray:
    """The array stored in ``path`` (uint8, shape from the header)."""
    try:
        # gzip.decompress inflates each member in one call: a streamed read would take the GIL back
        # hundreds of times, and wait for it each time while Hydra composes on the main thread
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; a cut .gz is EOFError
        raise DataError(f"{path}: cannot read it ({exc}); delete it and get the dataset again") from exc
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != UBYTE or raw[3] == 0:
        raise DataError(
            f"{path}: not an IDX file of unsigned bytes (header {raw[:4].hex() or 'empty'}); "
            "delete it and get the dataset again"
        )
    ndim = raw[3]
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes); delete it and get the dataset again")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected = header_size + math.prod(shape)
    if len(raw) != expected:
        raise DataError(
            f"{path}: truncated or corrupt: {len(raw)} bytes but its header {shape} needs {expected}; "
            "delete it and get the dataset again"
        )
    return np.frombuffer(bytearray(raw), dtype=np.uint8, offset=header_size).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as IDX (gzipped if ``path`` ends in .gz): the inverse of :func:`read_idx`."""
    header = struct.pack(">BBBB", 0, 0, UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(payload)
