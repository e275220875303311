"""Memory images, Intel HEX / S-record / binary I/O, checksums and template patching."""

from hex_generator.binary import emit_binary, parse_binary
from hex_generator.checksums import ChecksumAlgorithm, checksum
from hex_generator.errors import (
    AddressOverflow,
    BadChecksum,
    BadHexDigit,
    BadRecordStart,
    DataAfterEof,
    HexError,
    HexFormatError,
    ImageTooLarge,
    LengthMismatch,
    MissingEof,
    OddDigitCount,
    OverlapError,
    UnknownRecordType,
    ZoneError,
)
from hex_generator.files import load, save
from hex_generator.ihex import emit_ihex, parse_ihex
from hex_generator.image import Image, Segment, StartAddress
from hex_generator.patch import (
    ChecksumSpec,
    PatchLayout,
    Zone,
    ZoneEncoding,
    decode_device_id,
    encode_device_id,
    is_zone_blank,
    patch,
)
from hex_generator.srec import emit_srec, parse_srec

__all__ = [
    "AddressOverflow",
    "BadChecksum",
    "BadHexDigit",
    "BadRecordStart",
    "ChecksumAlgorithm",
    "ChecksumSpec",
    "DataAfterEof",
    "HexError",
    "HexFormatError",
    "Image",
    "ImageTooLarge",
    "LengthMismatch",
    "MissingEof",
    "OddDigitCount",
    "OverlapError",
    "PatchLayout",
    "Segment",
    "StartAddress",
    "UnknownRecordType",
    "Zone",
    "ZoneEncoding",
    "ZoneError",
    "checksum",
    "decode_device_id",
    "emit_binary",
    "emit_ihex",
    "emit_srec",
    "encode_device_id",
    "is_zone_blank",
    "load",
    "parse_binary",
    "parse_ihex",
    "parse_srec",
    "patch",
    "save",
]
