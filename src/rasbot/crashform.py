"""Decoding a crash upload's form body as it arrives (PROTOCOL.md 6).

The updater posts ``dumpfileb64=<base64 of the minidump>``, form-encoded: the
value is base64 with ``+``, ``/`` and ``=`` percent-escaped. `DumpDecoder` turns the
body into the dump chunk by chunk, so an upload never sits in memory whole and one
that is too large is refused as soon as it is too large.
"""

from __future__ import annotations

import binascii
import re
from urllib.parse import unquote_plus, unquote_to_bytes

FIELD = "dumpfileb64"

#: The first bytes of every minidump.
MINIDUMP_MAGIC = b"MDMP"

# Other fields are skipped, but a field name longer than this is not a crash form.
_KEY_MAX = 256
_KEY_END = re.compile(rb"[=&]")
_WHITESPACE = b" \t\r\n"


class FormError(ValueError):
    """The body is not a crash form; the message says why, for a 400."""


class DumpTooLarge(Exception):
    """The dump is larger than the limit; answered 413."""


def body_limit(max_dump_bytes: int) -> int:
    """The largest body that can carry a dump of ``max_dump_bytes``.

    Base64 is 4/3 of the dump, and the updater percent-escapes ``+``, ``/`` and
    ``=`` (three bytes each), so a body may be up to three times its base64; a
    little more leaves room for other fields and line breaks.
    """
    base64_chars = 4 * -(-max_dump_bytes // 3)
    return len(FIELD) + 1 + 3 * base64_chars + 4096


class _Base64Value:
    """The percent-encoded base64 value of one field, decoded piece by piece."""

    def __init__(self) -> None:
        self._escape = b""  # an escape cut by a chunk boundary: "%" or "%X"
        self._pending = b""  # base64 characters short of a 4-character group
        self._padded = False

    def feed(self, data: bytes) -> bytes:
        data = self._escape + data
        cut = data.rfind(b"%", max(0, len(data) - 2))
        data, self._escape = (data, b"") if cut < 0 else (data[:cut], data[cut:])
        # "+" stays "+": base64 has no spaces, so a raw "+" is a base64 "+".
        text = self._pending + unquote_to_bytes(data).translate(None, _WHITESPACE)
        whole = len(text) - len(text) % 4
        self._pending = text[whole:]
        return self._decode(text[:whole])

    def close(self) -> bytes:
        if self._escape:
            raise FormError(f"{FIELD} ends inside a %-escape")
        if len(self._pending) == 1:
            raise FormError(f"{FIELD} is not base64: its length is wrong")
        # Some encoders leave out the final "=" padding; put it back.
        pending = self._pending
        return self._decode(pending + b"=" * (-len(pending) % 4)) if pending else b""

    def _decode(self, text: bytes) -> bytes:
        if not text:
            return b""
        if self._padded:
            raise FormError(f"{FIELD} is not base64: data after the padding")
        self._padded = text.endswith(b"=")
        try:
            return binascii.a2b_base64(text, strict_mode=True)
        except binascii.Error as exc:
            raise FormError(f"{FIELD} is not base64: {exc}") from None


class DumpDecoder:
    """Feed the body's chunks; get back the dump's bytes as they are decoded."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.head = b""  # the first bytes, to recognise a minidump
        self._key = bytearray()
        self._value: _Base64Value | None = None
        self._skipping = False
        self._found = False

    @property
    def is_minidump(self) -> bool:
        """Whether the dump starts like a minidump."""
        return self.head.startswith(MINIDUMP_MAGIC)

    def feed(self, chunk: bytes) -> bytes:
        """The dump bytes carried by ``chunk``; raises FormError or DumpTooLarge."""
        out: list[bytes] = []
        position = 0
        while position < len(chunk):
            if self._value is None and not self._skipping:
                position = self._read_key(chunk, position)
            else:
                position = self._read_value(chunk, position, out)
        return self._counted(b"".join(out))

    def finish(self) -> bytes:
        """The last dump bytes, once the body has ended."""
        out = [self._end_value()] if self._value is not None else []
        if not self._found:
            raise FormError(f"the form has no {FIELD} field")
        return self._counted(b"".join(out))

    def _read_key(self, chunk: bytes, position: int) -> int:
        match = _KEY_END.search(chunk, position)
        end = match.start() if match else len(chunk)
        self._key += chunk[position:end]
        if len(self._key) > _KEY_MAX:
            raise FormError("the body is not a form: a field name is too long")
        if match is None:
            return end
        if chunk[end : end + 1] == b"=":
            self._start_value(bytes(self._key))
        self._key.clear()
        return end + 1

    def _start_value(self, key: bytes) -> None:
        if not _is_dump_field(key):
            self._skipping = True
        elif self._found:
            raise FormError(f"{FIELD} is given twice")
        else:
            self._found = True
            self._value = _Base64Value()

    def _read_value(self, chunk: bytes, position: int, out: list[bytes]) -> int:
        end = chunk.find(b"&", position)
        stop = len(chunk) if end < 0 else end
        if self._value is not None:
            out.append(self._value.feed(chunk[position:stop]))
        if end < 0:
            return stop
        if self._value is not None:
            out.append(self._end_value())
        self._skipping = False
        return end + 1

    def _end_value(self) -> bytes:
        assert self._value is not None
        last = self._value.close()
        self._value = None
        return last

    def _counted(self, data: bytes) -> bytes:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise DumpTooLarge(f"the dump is over {self.max_bytes} bytes")
        if len(self.head) < len(MINIDUMP_MAGIC):
            self.head = (self.head + data)[: len(MINIDUMP_MAGIC)]
        return data


def _is_dump_field(key: bytes) -> bool:
    return unquote_plus(key.decode("latin-1")) == FIELD
