"""TFRecord framing, written and read without TensorFlow.

Why our own: the request log appends a whole batch of records with one
``os.write`` (no user-space buffer to lose when the process dies), and reads
files that a killed process may have left with a torn last record -- TF's
reader stops there with ``DataLossError``, losing the rest of the span's
reading; here a torn tail ends the file's records and a corrupt record in the
middle raises ``CorruptRecordError`` naming the file and offset.

Frame: uint64 length, masked CRC32C of the length, data, masked CRC32C of the
data (little-endian), as ``tf.io.TFRecordWriter`` writes it uncompressed.
"""
import logging
import struct
from typing import Iterator

import google_crc32c

logger = logging.getLogger(__name__)

_HEADER = 12  # length (8) + its CRC (4)
_FOOTER = 4


class CorruptRecordError(ValueError):
    """A record's checksum does not match: the file is damaged, not merely cut short."""


def masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One TFRecord: length, masked CRC32C of the length, data, masked CRC32C of the data."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc(header)) + data + struct.pack("<I", masked_crc(data))


def read_records(path: str) -> Iterator[bytes]:
    """The complete records of a TFRecord file, checksums verified.

    A record cut short at the end of the file (the writer died inside a
    ``write``) ends the iteration with a warning; a checksum mismatch before
    that raises ``CorruptRecordError``.
    """
    with open(path, "rb") as f:
        data = f.read()
    offset, size = 0, len(data)
    while offset < size:
        if size - offset < _HEADER:
            break
        header = data[offset:offset + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[offset + 8:offset + _HEADER])
        if header_crc != masked_crc(header):
            raise CorruptRecordError(f"{path}: bad length checksum at byte {offset}")
        end = offset + _HEADER + length + _FOOTER
        if end > size:
            break
        record = data[offset + _HEADER:end - _FOOTER]
        (data_crc,) = struct.unpack("<I", data[end - _FOOTER:end])
        if data_crc != masked_crc(record):
            raise CorruptRecordError(f"{path}: bad data checksum in the record at byte {offset}")
        yield record
        offset = end
    if offset < size:
        logger.warning("%s: ignoring a torn last record (%d bytes at byte %d): its writer was "
                       "killed while writing it", path, size - offset, offset)
