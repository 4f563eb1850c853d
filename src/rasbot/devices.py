"""Raspberry Pi revision codes and the devices they map to (protocol 2.2).

A client sends the `Revision` line of `/proc/cpuinfo`. New-style codes (bit 23 set)
pack the memory size, manufacturer, processor and board type into bit fields; the
older codes 0002-0015 are a plain table and are all BCM2835 boards. Releases ship
images per device: `RPi` for BCM2835 boards, `RPi2` for the rest, and optionally a
specific device (such as `RPi3bplus`) for a set of board types given by a setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

__all__ = [
    "DEFAULT_DEVICE",
    "DEFAULT_DEVICE_BOARDS",
    "GENERAL_DEVICES",
    "Board",
    "DeviceMatch",
    "decode_revision",
    "match_device",
    "parse_device_boards",
    "parse_device_names",
]


@dataclass(frozen=True)
class Board:
    """What a revision code says about the board it came from."""

    code: int
    new_style: bool
    processor: str
    board_type: int | None
    model: str
    memory_mb: int | None
    manufacturer: str | None
    pcb_revision: str | None
    warranty_voided: bool


@dataclass(frozen=True)
class DeviceMatch:
    """The general device of a board and, if a setting names one, its specific one."""

    general: str
    specific: str | None
    board: Board | None


# Devices by processor; anything not listed (unknown or unparsable) is `RPi`, as the
# old servers answered.
DEFAULT_DEVICE = "RPi"
GENERAL_DEVICES: Mapping[str, str] = {
    "BCM2835": "RPi",
    "BCM2836": "RPi2",
    "BCM2837": "RPi2",
    "BCM2711": "RPi2",
    "BCM2712": "RPi2",
}

# RasPlex 1.8.0b shipped a separate image for the 3B+ (0x0d) and the 3A+ (0x0e).
DEFAULT_DEVICE_BOARDS: Mapping[str, frozenset[int]] = {
    "RPi3bplus": frozenset({0x0D, 0x0E}),
}

# Old-style codes: model, PCB revision, memory and manufacturer.
_OLD_STYLE: Mapping[int, tuple[str, str, int | None, str]] = {
    0x0002: ("1 Model B rev 1", "1.0", 256, "Egoman"),
    0x0003: ("1 Model B rev 1", "1.0", 256, "Egoman"),
    0x0004: ("1 Model B rev 2", "2.0", 256, "Sony UK"),
    0x0005: ("1 Model B rev 2", "2.0", 256, "Qisda"),
    0x0006: ("1 Model B rev 2", "2.0", 256, "Egoman"),
    0x0007: ("1 Model A", "2.0", 256, "Egoman"),
    0x0008: ("1 Model A", "2.0", 256, "Sony UK"),
    0x0009: ("1 Model A", "2.0", 256, "Qisda"),
    0x000D: ("1 Model B rev 2", "2.0", 512, "Egoman"),
    0x000E: ("1 Model B rev 2", "2.0", 512, "Sony UK"),
    0x000F: ("1 Model B rev 2", "2.0", 512, "Egoman"),
    0x0010: ("1 Model B+", "1.2", 512, "Sony UK"),
    0x0011: ("Compute Module 1", "1.0", 512, "Sony UK"),
    0x0012: ("1 Model A+", "1.1", 256, "Sony UK"),
    0x0013: ("1 Model B+", "1.2", 512, "Embest"),
    0x0014: ("Compute Module 1", "1.0", 512, "Embest"),
    # The Raspberry Pi documentation lists this one as 256MB or 512MB.
    0x0015: ("1 Model A+", "1.1", None, "Embest"),
}

# New-style bit fields (bits 4-11 type, 12-15 processor, 16-19 maker, 20-22 memory).
_BOARD_TYPES: Mapping[int, str] = {
    0x00: "1 Model A",
    0x01: "1 Model B",
    0x02: "1 Model A+",
    0x03: "1 Model B+",
    0x04: "2 Model B",
    0x05: "Alpha",
    0x06: "Compute Module 1",
    0x08: "3 Model B",
    0x09: "Zero",
    0x0A: "Compute Module 3",
    0x0C: "Zero W",
    0x0D: "3 Model B+",
    0x0E: "3 Model A+",
    0x0F: "Internal",
    0x10: "Compute Module 3+",
    0x11: "4 Model B",
    0x12: "Zero 2 W",
    0x13: "400",
    0x14: "Compute Module 4",
    0x15: "Compute Module 4S",
    0x16: "Internal",
    0x17: "5",
    0x18: "Compute Module 5",
    0x19: "500",
    0x1A: "Compute Module 5 Lite",
}
_PROCESSORS = ("BCM2835", "BCM2836", "BCM2837", "BCM2711", "BCM2712")
_MEMORY_MB = (256, 512, 1024, 2048, 4096, 8192, 16384)
_MANUFACTURERS = ("Sony UK", "Egoman", "Embest", "Sony Japan", "Embest", "Stadium")

_NEW_STYLE_FLAG = 1 << 23
_OLD_WARRANTY_BIT = 1 << 24
_NEW_WARRANTY_BIT = 1 << 25
_UNKNOWN = "unknown"
_MAX_LENGTH = 64

_T = TypeVar("_T")

_HEX_CODE = re.compile(r"(?:0x)?(?P<hex>[0-9a-f]{1,8})", re.ASCII | re.IGNORECASE)
_DEVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_+.-]*", re.ASCII)
_BOARD_TYPE = re.compile(r"(?:0x)?[0-9a-f]{1,2}", re.ASCII | re.IGNORECASE)


def decode_revision(text: str | None) -> Board | None:
    """Decode a revision code (`a02082`, `0x000e`, `1000002`); None if it is not hex."""
    # The length check keeps junk out of the cache below.
    if not isinstance(text, str) or len(text) > _MAX_LENGTH:
        return None
    return _decode(text)


# Every request decodes a revision and there are only a few dozen real ones; a
# Board is immutable, so sharing cached instances is safe.
@lru_cache(maxsize=1024)
def _decode(text: str) -> Board | None:
    match = _HEX_CODE.fullmatch(text.strip())
    if match is None:
        return None

    code = int(match["hex"], 16)
    if code & _NEW_STYLE_FLAG:
        return _decode_new_style(code)
    return _decode_old_style(code)


def _decode_old_style(code: int) -> Board:
    # Overvolting set the warranty bit above the old sequential codes.
    known = _OLD_STYLE.get(code & ~_OLD_WARRANTY_BIT)
    model, pcb, memory, maker = known or (_UNKNOWN, None, None, None)
    return Board(
        code=code,
        new_style=False,
        processor="BCM2835",
        board_type=None,
        model=model,
        memory_mb=memory,
        manufacturer=maker,
        pcb_revision=pcb,
        warranty_voided=bool(code & _OLD_WARRANTY_BIT),
    )


def _decode_new_style(code: int) -> Board:
    board_type = (code >> 4) & 0xFF
    return Board(
        code=code,
        new_style=True,
        processor=_field(_PROCESSORS, code >> 12 & 0xF) or _UNKNOWN,
        board_type=board_type,
        model=_BOARD_TYPES.get(board_type, _UNKNOWN),
        memory_mb=_field(_MEMORY_MB, code >> 20 & 0x7),
        manufacturer=_field(_MANUFACTURERS, code >> 16 & 0xF),
        pcb_revision=f"1.{code & 0xF}",
        warranty_voided=bool(code & _NEW_WARRANTY_BIT),
    )


def _field(values: tuple[_T, ...], index: int) -> _T | None:
    return values[index] if index < len(values) else None


def match_device(
    revision: str | None, boards: Mapping[str, frozenset[int]]
) -> DeviceMatch:
    """Map a revision code to its general device, and to a specific one in `boards`."""
    board = decode_revision(revision)
    if board is None:
        return DeviceMatch(general=DEFAULT_DEVICE, specific=None, board=None)

    general = GENERAL_DEVICES.get(board.processor, DEFAULT_DEVICE)
    return DeviceMatch(general=general, specific=_specific(board, boards), board=board)


def _specific(board: Board, boards: Mapping[str, frozenset[int]]) -> str | None:
    # Old-style codes carry no board type, and all of them are plain BCM2835 boards.
    if board.board_type is None:
        return None
    for device, board_types in boards.items():
        if board.board_type in board_types:
            return device
    return None


def parse_device_boards(text: str) -> dict[str, frozenset[int]]:
    """Parse the specific-device setting, `RPi3bplus=0x0d,0x0e;Other=0x11`.

    Raises ValueError naming the faulty part.
    """
    devices: dict[str, frozenset[int]] = {}
    owners: dict[int, str] = {}
    for entry in _entries(text, ";"):
        device, values = _split_pair(entry, "device=board types")
        board_types = frozenset(_board_type(value) for value in values.split(","))
        _check_new_device(device, devices)

        # A board type in two devices would make the package served depend on order.
        for board_type in board_types:
            if board_type in owners:
                raise ValueError(
                    f"board type 0x{board_type:02x} is in both {owners[board_type]!r}"
                    f" and {device!r}"
                )
            owners[board_type] = device
        devices[device] = board_types
    return devices


def parse_device_names(text: str) -> list[tuple[str, str]]:
    """Parse the device names setting, `RPi2=Raspberry Pi 2 / 3,RPi=Raspberry Pi 1`.

    Raises ValueError naming the faulty part.
    """
    names: dict[str, str] = {}
    for entry in _entries(text, ","):
        device, name = _split_pair(entry, "device=name")
        if not name:
            raise ValueError(f"device {device!r} has an empty name in {entry!r}")
        _check_new_device(device, names)
        names[device] = name
    return list(names.items())


def _entries(text: str, separator: str) -> list[str]:
    # Blank entries are tolerated so that a trailing separator is harmless.
    return [entry.strip() for entry in text.split(separator) if entry.strip()]


def _split_pair(entry: str, form: str) -> tuple[str, str]:
    device, equals, value = entry.partition("=")
    device = device.strip()
    if not equals:
        raise ValueError(f"expected {form}, got {entry!r}")
    if not _DEVICE_ID.fullmatch(device):
        raise ValueError(f"{device!r} is not a device id (letters, digits, _+.-)")
    return device, value.strip()


def _check_new_device(device: str, seen: Mapping[str, object]) -> None:
    # Device ids match case-insensitively, so `rpi2` would shadow `RPi2`.
    if device.lower() in (known.lower() for known in seen):
        raise ValueError(f"device {device!r} is listed twice")


def _board_type(value: str) -> int:
    value = value.strip()
    if not _BOARD_TYPE.fullmatch(value):
        raise ValueError(f"{value!r} is not a board type (hex, like 0x0d)")
    return int(value, 16)
