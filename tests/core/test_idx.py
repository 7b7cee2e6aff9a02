import gzip

import numpy as np
import pytest

from sweeplab.errors import DataError
from sweeplab.training.idx import read_idx, write_idx


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trip_plain_and_gzipped(tmp_path, name):
    array = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / name, array)
    read = read_idx(tmp_path / name)
    assert read.shape == (7, 28, 28) and read.dtype == np.uint8
    np.testing.assert_array_equal(read, array)
    read[0, 0, 0] = 1  # writable: torch.from_numpy needs no copy and gives no warning


def test_labels_are_one_dimensional(tmp_path):
    write_idx(tmp_path / "labels", np.arange(10, dtype=np.uint8))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), np.arange(10))


def test_truncated_file_names_the_file_and_the_sizes(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((5, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated or corrupt: .* needs 3936"):
        read_idx(path)


def test_truncated_gzip_is_a_data_error(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.zeros((50, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match="cannot read it"):
        read_idx(path)


def test_gzip_of_garbage_is_a_data_error(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: cannot read it"):
        read_idx(path)


@pytest.mark.parametrize("header", [b"", b"\x00\x00", b"\x01\x00\x08\x03", b"\x00\x00\x0d\x01", b"\x00\x00\x08\x00"])
def test_bad_headers_are_rejected(tmp_path, header):
    path = tmp_path / "x-idx"
    path.write_bytes(header + bytes(16))
    with pytest.raises(DataError, match="x-idx"):
        read_idx(path)


def test_header_longer_than_file(tmp_path):
    path = tmp_path / "x-idx"
    path.write_bytes(b"\x00\x00\x08\x03" + bytes(4))
    with pytest.raises(DataError, match="truncated IDX header"):
        read_idx(path)


def test_gzip_member_is_read_whole(tmp_path):
    """A .gz written by another tool (as Debian recompresses them) reads the same."""
    array = np.arange(4 * 28 * 28, dtype=np.uint8).reshape(4, 28, 28) % 251
    write_idx(tmp_path / "a", array)
    with gzip.open(tmp_path / "b.gz", "wb", compresslevel=1) as f:
        f.write((tmp_path / "a").read_bytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "b.gz"), array)
