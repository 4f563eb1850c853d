"""`piversion <revision>`: what a Raspberry Pi revision code is and what it gets."""

from __future__ import annotations

from rasbot.catalog import CHANNELS, Catalog
from rasbot.chat import texts
from rasbot.chat.registry import Context, Family
from rasbot.chat.replies import Reply, table
from rasbot.devices import Board, DeviceMatch, decode_revision, match_device
from rasbot.selection import select_update

family = Family("boards")


@family.command(
    "piversion",
    args=r"(?P<revision>\S+)",
    usage="piversion <revision>",
    synonyms=("board", "revision"),
    help="Decode a Pi revision code (a020d3) and say which packages it gets.",
)
async def piversion(ctx: Context) -> Reply:
    """The board's details, its devices, and the newest update on each channel."""
    revision = ctx.arg("revision")
    board = decode_revision(revision)
    if board is None:
        return Reply.error(texts.NOT_A_REVISION.format(revision=revision))
    match = match_device(revision, ctx.services.settings.device_board_map)
    return Reply.say(
        texts.BOARD_TITLE.format(revision=revision.lower(), model=board.model),
        table(texts.BOARD_COLUMNS, _board_rows(board)),
        _packages(match),
        _offers(ctx.services.syncer.catalog, match),
    )


def _board_rows(board: Board) -> list[tuple[str, str]]:
    memory = f"{board.memory_mb} MB" if board.memory_mb else texts.UNKNOWN
    board_type = f"0x{board.board_type:02x}" if board.board_type is not None else "-"
    return [
        ("processor", board.processor),
        ("board type", board_type),
        ("memory", memory),
        ("maker", board.manufacturer or texts.UNKNOWN),
        ("PCB revision", board.pcb_revision or texts.UNKNOWN),
        ("code style", "new" if board.new_style else "old"),
        ("warranty", texts.VOIDED if board.warranty_voided else texts.INTACT),
    ]


def _packages(match: DeviceMatch) -> str:
    if match.specific is None:
        return texts.GETS_GENERAL.format(general=match.general)
    return texts.GETS_SPECIFIC.format(specific=match.specific, general=match.general)


def _offers(catalog: Catalog, match: DeviceMatch) -> str:
    """The release a device on each channel would be offered from no version."""
    offers = []
    for channel in CHANNELS:
        offer = select_update(catalog, channel, match, None)
        shown = (
            f"{offer.release.name} ({offer.package.device})" if offer else texts.NOTHING
        )
        offers.append(f"{channel} {shown}")
    return texts.NEWEST_UPDATES.format(offers=", ".join(offers))
