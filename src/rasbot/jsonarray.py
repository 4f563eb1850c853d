"""The items of a long JSON array, decoded one at a time as its text arrives.

A releases file or a stored listing of thousands of releases is several times
its size once decoded whole. Read through `items`, only the item being decoded
and a piece of the text are in memory at any time.
"""

from __future__ import annotations

import codecs
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

#: Characters (or bytes) read at a time.
PIECE = 1 << 20

_SPACE = re.compile(r"[ \t\n\r]*")
_NUMBER_GOES_ON = re.compile(r"[0-9.eE+-]*\Z")

PairsHook = Callable[[list[tuple[str, Any]]], Any]


class NotAnArray(ValueError):
    """The text is JSON of something else, or no JSON at all, from its start."""


def items(pieces: Iterable[str], *, hook: PairsHook | None = None) -> Iterator[Any]:
    """The items of the JSON array whose text is ``pieces`` joined.

    Accepts and rejects what ``json.loads`` would (ValueError, with the position),
    except that it tells an array from anything else before decoding items.
    ``hook`` is json's ``object_pairs_hook``.
    """
    reader = _Reader(pieces, hook)
    if reader.mark() != "[":
        raise NotAnArray("not a JSON array")
    reader.skip()
    mark = reader.mark()
    while mark != "]":
        yield reader.item()
        mark = reader.mark()
        if mark not in (",", "]"):
            raise ValueError(f"expected ',' or ']' (character {reader.position})")
        if mark == ",":
            # To the next item: "[1,]" fails in item(), on the "]".
            reader.skip()
            reader.mark()
    reader.skip()
    if reader.mark() != "":
        raise ValueError(f"extra data (character {reader.position})")


def file_pieces(file: BinaryIO) -> Iterator[str]:
    """The text of a JSON file, in the encoding ``json.loads`` would detect."""
    start = file.read(PIECE)
    decoder = codecs.getincrementaldecoder(json.detect_encoding(start))("surrogatepass")
    piece = start
    while piece:
        yield decoder.decode(piece)
        piece = file.read(PIECE)
    yield decoder.decode(b"", final=True)


def zlib_pieces(blob: bytes) -> Iterator[str]:
    """The UTF-8 text compressed in ``blob``."""
    inflater = zlib.decompressobj()
    decoder = codecs.getincrementaldecoder("utf-8")()
    step = max(1, PIECE // 8)
    for at in range(0, len(blob), step):
        pending = blob[at : at + step]
        while pending:
            yield decoder.decode(inflater.decompress(pending, PIECE))
            pending = inflater.unconsumed_tail
    yield decoder.decode(inflater.flush(), final=True)
    if not inflater.eof:
        raise zlib.error("incomplete or truncated stream")


class _Reader:
    """A position in text that is read on as far as it is needed."""

    def __init__(self, pieces: Iterable[str], hook: PairsHook | None) -> None:
        self._pieces = iter(pieces)
        self._decoder = json.JSONDecoder(object_pairs_hook=hook)
        self._text = ""
        self._at = 0
        # Characters dropped from the front of _text, for positions in messages.
        self._dropped = 0
        self._ended = False

    @property
    def position(self) -> int:
        """The current position in the whole text."""
        return self._dropped + self._at

    def mark(self) -> str:
        """The next character that is not white space; '' at the end."""
        while True:
            found = _SPACE.match(self._text, self._at)
            self._at = found.end() if found else self._at
            if self._at < len(self._text) or not self._more():
                return self._text[self._at : self._at + 1]

    def skip(self) -> None:
        """Step over the character `mark` returned."""
        self._at += 1

    def item(self) -> Any:
        """The JSON value that starts here."""
        while True:
            try:
                value, end = self._decoder.raw_decode(self._text, self._at)
            except json.JSONDecodeError as exc:
                if self._more():
                    continue
                where = self._dropped + exc.pos
                raise ValueError(f"{exc.msg} (character {where})") from None
            except ValueError:
                # Python's limit on the digits of an int: the number may go on as
                # a float in the text not read yet.
                if self._more():
                    continue
                raise
            except RecursionError:
                where = self.position
                raise ValueError(f"nested too deeply (character {where})") from None
            # A number at the end of the text read so far ("0.", "1e") may go on
            # in the next piece.
            if _NUMBER_GOES_ON.match(self._text, end) and self._more():
                continue
            self._at = end
            return value

    def _more(self) -> bool:
        """Read on, at least as much as is unread; False at the end of the text.

        An item found unfinished is decoded again from its start, so the text
        read at least doubles each time: a long item is decoded a few times, not
        once per piece.
        """
        unread = len(self._text) - self._at
        pieces: list[str] = []
        read = 0
        while not self._ended and read <= unread:
            piece = next(self._pieces, None)
            if piece is None:
                self._ended = True
            else:
                pieces.append(piece)
                read += len(piece)
        if not pieces:
            return False
        self._dropped += self._at
        self._text = self._text[self._at :] + "".join(pieces)
        self._at = 0
        return True
