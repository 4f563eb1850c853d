"""Revision decoding and device mapping, as specified in PROTOCOL.md 2.2."""

from __future__ import annotations

import pytest

from rasbot.devices import (
    DEFAULT_DEVICE_BOARDS,
    GENERAL_DEVICES,
    Board,
    decode_revision,
    match_device,
    parse_device_boards,
    parse_device_names,
)

BOARDS = {"RPi3bplus": frozenset({0x0D, 0x0E})}

# revision, processor, model, memory (MB), manufacturer, PCB revision, device
REAL_CODES = [
    ("0002", "BCM2835", "1 Model B rev 1", 256, "Egoman", "1.0", "RPi"),
    ("0004", "BCM2835", "1 Model B rev 2", 256, "Sony UK", "2.0", "RPi"),
    ("0005", "BCM2835", "1 Model B rev 2", 256, "Qisda", "2.0", "RPi"),
    ("0008", "BCM2835", "1 Model A", 256, "Sony UK", "2.0", "RPi"),
    ("000e", "BCM2835", "1 Model B rev 2", 512, "Sony UK", "2.0", "RPi"),
    ("0010", "BCM2835", "1 Model B+", 512, "Sony UK", "1.2", "RPi"),
    ("0011", "BCM2835", "Compute Module 1", 512, "Sony UK", "1.0", "RPi"),
    ("0012", "BCM2835", "1 Model A+", 256, "Sony UK", "1.1", "RPi"),
    ("0013", "BCM2835", "1 Model B+", 512, "Embest", "1.2", "RPi"),
    ("0015", "BCM2835", "1 Model A+", None, "Embest", "1.1", "RPi"),
    ("1000002", "BCM2835", "1 Model B rev 1", 256, "Egoman", "1.0", "RPi"),
    ("900021", "BCM2835", "1 Model A+", 512, "Sony UK", "1.1", "RPi"),
    ("900032", "BCM2835", "1 Model B+", 512, "Sony UK", "1.2", "RPi"),
    ("900092", "BCM2835", "Zero", 512, "Sony UK", "1.2", "RPi"),
    ("900093", "BCM2835", "Zero", 512, "Sony UK", "1.3", "RPi"),
    ("920093", "BCM2835", "Zero", 512, "Embest", "1.3", "RPi"),
    ("9000c1", "BCM2835", "Zero W", 512, "Sony UK", "1.1", "RPi"),
    ("a01040", "BCM2836", "2 Model B", 1024, "Sony UK", "1.0", "RPi2"),
    ("a01041", "BCM2836", "2 Model B", 1024, "Sony UK", "1.1", "RPi2"),
    ("a21041", "BCM2836", "2 Model B", 1024, "Embest", "1.1", "RPi2"),
    ("a22042", "BCM2837", "2 Model B", 1024, "Embest", "1.2", "RPi2"),
    ("a02082", "BCM2837", "3 Model B", 1024, "Sony UK", "1.2", "RPi2"),
    ("a22082", "BCM2837", "3 Model B", 1024, "Embest", "1.2", "RPi2"),
    ("a32082", "BCM2837", "3 Model B", 1024, "Sony Japan", "1.2", "RPi2"),
    ("a52082", "BCM2837", "3 Model B", 1024, "Stadium", "1.2", "RPi2"),
    ("a020a0", "BCM2837", "Compute Module 3", 1024, "Sony UK", "1.0", "RPi2"),
    ("a020d3", "BCM2837", "3 Model B+", 1024, "Sony UK", "1.3", "RPi2"),
    ("9020e0", "BCM2837", "3 Model A+", 512, "Sony UK", "1.0", "RPi2"),
    ("902120", "BCM2837", "Zero 2 W", 512, "Sony UK", "1.0", "RPi2"),
    ("a02100", "BCM2837", "Compute Module 3+", 1024, "Sony UK", "1.0", "RPi2"),
    ("a03111", "BCM2711", "4 Model B", 1024, "Sony UK", "1.1", "RPi2"),
    ("b03111", "BCM2711", "4 Model B", 2048, "Sony UK", "1.1", "RPi2"),
    ("c03111", "BCM2711", "4 Model B", 4096, "Sony UK", "1.1", "RPi2"),
    ("d03114", "BCM2711", "4 Model B", 8192, "Sony UK", "1.4", "RPi2"),
    ("c03130", "BCM2711", "400", 4096, "Sony UK", "1.0", "RPi2"),
    ("a03140", "BCM2711", "Compute Module 4", 1024, "Sony UK", "1.0", "RPi2"),
    ("c04170", "BCM2712", "5", 4096, "Sony UK", "1.0", "RPi2"),
    ("e04171", "BCM2712", "5", 16384, "Sony UK", "1.1", "RPi2"),
]


@pytest.mark.parametrize(
    ("revision", "processor", "model", "memory", "maker", "pcb", "device"),
    REAL_CODES,
)
def test_real_revision_codes(
    revision: str,
    processor: str,
    model: str,
    memory: int | None,
    maker: str,
    pcb: str,
    device: str,
) -> None:
    board = decode_revision(revision)

    assert board is not None
    assert board.code == int(revision, 16)
    assert board.processor == processor
    assert board.model == model
    assert board.memory_mb == memory
    assert board.manufacturer == maker
    assert board.pcb_revision == pcb
    assert match_device(revision, BOARDS).general == device


def test_new_style_code_fields() -> None:
    board = decode_revision("a020d3")

    assert board == Board(
        code=0xA020D3,
        new_style=True,
        processor="BCM2837",
        board_type=0x0D,
        model="3 Model B+",
        memory_mb=1024,
        manufacturer="Sony UK",
        pcb_revision="1.3",
        warranty_voided=False,
    )


def test_old_style_codes_have_no_board_type() -> None:
    board = decode_revision("000e")

    assert board is not None
    assert board.new_style is False
    assert board.board_type is None


@pytest.mark.parametrize(
    ("revision", "voided"),
    [("0002", False), ("1000002", True), ("100000e", True), ("2a22082", True)],
)
def test_warranty_bit(revision: str, voided: bool) -> None:
    board = decode_revision(revision)

    assert board is not None
    assert board.warranty_voided is voided


def test_warranty_bit_does_not_hide_the_old_style_model() -> None:
    voided, plain = decode_revision("1000002"), decode_revision("0002")

    assert voided is not None and plain is not None
    assert voided.new_style is False
    assert (voided.model, voided.memory_mb) == (plain.model, plain.memory_mb)


@pytest.mark.parametrize(
    "text", ["a02082", "A02082", "0xa02082", "0XA02082", "  a02082\n", "00a02082"]
)
def test_revision_spellings(text: str) -> None:
    board = decode_revision(text)

    assert board is not None
    assert board.code == 0xA02082
    assert board.model == "3 Model B"


@pytest.mark.parametrize(
    "text",
    [None, "", "  ", "RPi", "0x", "xyz", "a0208g", "-1", "123456789", "0x0x12", "1 2"],
)
def test_unparsable_revisions(text: str | None) -> None:
    assert decode_revision(text) is None

    match = match_device(text, BOARDS)
    assert match.general == "RPi"
    assert match.specific is None
    assert match.board is None


def test_unknown_old_style_code_is_a_bcm2835() -> None:
    board = decode_revision("0001")

    assert board is not None
    assert board.processor == "BCM2835"
    assert board.model == "unknown"
    assert match_device("0001", BOARDS).general == "RPi"


def test_unknown_new_style_processor_and_type() -> None:
    # Processor 0xf and board type 0xff exist in no table.
    board = decode_revision("a0fff0")

    assert board is not None
    assert board.processor == "unknown"
    assert board.model == "unknown"
    assert board.board_type == 0xFF
    assert match_device("a0fff0", BOARDS).general == "RPi"


def test_unknown_memory_and_maker_codes_are_none() -> None:
    board = decode_revision("f9f082")

    assert board is not None
    assert board.memory_mb is None
    assert board.manufacturer is None


def test_general_devices() -> None:
    assert GENERAL_DEVICES["BCM2835"] == "RPi"
    for processor in ("BCM2836", "BCM2837", "BCM2711", "BCM2712"):
        assert GENERAL_DEVICES[processor] == "RPi2"


@pytest.mark.parametrize(
    ("revision", "general", "specific"),
    [
        ("a020d3", "RPi2", "RPi3bplus"),
        ("a020d4", "RPi2", "RPi3bplus"),
        ("9020e0", "RPi2", "RPi3bplus"),
        ("9020e1", "RPi2", "RPi3bplus"),
        ("a02082", "RPi2", None),
        ("a03111", "RPi2", None),
        ("902120", "RPi2", None),
        ("9000c1", "RPi", None),
        ("000e", "RPi", None),
        ("1000002", "RPi", None),
    ],
)
def test_3b_plus_and_3a_plus_map_to_rpi3bplus(
    revision: str, general: str, specific: str | None
) -> None:
    match = match_device(revision, DEFAULT_DEVICE_BOARDS)

    assert (match.general, match.specific) == (general, specific)
    assert match.board == decode_revision(revision)


def test_old_style_code_never_matches_a_board_type() -> None:
    # 000d is an old-style Model B whose code happens to equal the 3B+ board type.
    assert match_device("000d", {"Low": frozenset({0x00, 0x0D})}).specific is None


def test_no_specific_devices_configured() -> None:
    match = match_device("a020d3", {})

    assert (match.general, match.specific) == ("RPi2", None)


def test_default_boards_match_the_default_setting() -> None:
    assert parse_device_boards("RPi3bplus=0x0d,0x0e") == DEFAULT_DEVICE_BOARDS


# The settings parsers.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("RPi3bplus=0x0d,0x0e", {"RPi3bplus": frozenset({0x0D, 0x0E})}),
        ("RPi3bplus=d,E", {"RPi3bplus": frozenset({0x0D, 0x0E})}),
        (" RPi3bplus = 0x0D , 0X0e ; ", {"RPi3bplus": frozenset({0x0D, 0x0E})}),
        (
            "RPi3bplus=0x0d,0x0e;RPi4=0x11,0x13,0x14",
            {
                "RPi3bplus": frozenset({0x0D, 0x0E}),
                "RPi4": frozenset({0x11, 0x13, 0x14}),
            },
        ),
        ("RPi3bplus=0x0d,0x0d", {"RPi3bplus": frozenset({0x0D})}),
        ("", {}),
        (" ; ", {}),
    ],
)
def test_parse_device_boards(text: str, expected: dict[str, frozenset[int]]) -> None:
    assert parse_device_boards(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RPi3bplus", "expected device=board types"),
        ("RPi3bplus:0x0d", "expected device=board types"),
        ("=0x0d", "is not a device id"),
        ("RPi 3=0x0d", "is not a device id"),
        ("RPi3bplus=", "is not a board type"),
        ("RPi3bplus=0x0d,", "is not a board type"),
        ("RPi3bplus=0x0d,,0x0e", "is not a board type"),
        ("RPi3bplus=0x0g", "is not a board type"),
        ("RPi3bplus=0x100", "is not a board type"),
        ("RPi3bplus=13 14", "is not a board type"),
        ("RPi3bplus=0x0d,0x0e;RPi3BPLUS=0x11", "listed twice"),
        ("RPi3bplus=0x0d;Other=0x0d", "in both 'RPi3bplus' and 'Other'"),
    ],
)
def test_parse_device_boards_rejects_bad_syntax(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_device_boards(text)


def test_parse_device_names() -> None:
    text = (
        "RPi2=Raspberry Pi 2 / 3,RPi=Raspberry Pi 1 / Zero,RPi3bplus=Raspberry Pi 3 B+"
    )

    assert parse_device_names(text) == [
        ("RPi2", "Raspberry Pi 2 / 3"),
        ("RPi", "Raspberry Pi 1 / Zero"),
        ("RPi3bplus", "Raspberry Pi 3 B+"),
    ]


def test_parse_device_names_tolerates_spaces_and_trailing_comma() -> None:
    assert parse_device_names(" RPi = Raspberry Pi 1 = A/B , ") == [
        ("RPi", "Raspberry Pi 1 = A/B")
    ]
    assert parse_device_names("") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RPi2", "expected device=name"),
        ("RPi2=Raspberry Pi 2,RPi", "expected device=name, got 'RPi'"),
        ("=Raspberry Pi", "is not a device id"),
        ("RPi 2=Raspberry Pi 2", "is not a device id"),
        ("RPi2=", "empty name"),
        ("RPi2=  ,RPi=Raspberry Pi 1", "empty name"),
        ("RPi2=Raspberry Pi 2,rpi2=Raspberry Pi 2 again", "listed twice"),
    ],
)
def test_parse_device_names_rejects_bad_syntax(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_device_names(text)
