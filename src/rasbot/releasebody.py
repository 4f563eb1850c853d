"""Parse the YAML body of a GitHub release (PROTOCOL.md section 8).

A body says which channel a release belongs to, what changed, and which install
image and update package each device gets. Bodies are written by hand on GitHub,
so :func:`parse_body` accepts anything and never raises: whatever is wrong ends
up as a short sentence in ``problems`` (release level) or in a package's
``problem`` (that one package), for the operators to read.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from rasbot.rolloutplan import ROLLOUT_CHANNELS, Plan, parse_plan

__all__ = [
    "CHANNELS",
    "INSTALL",
    "LEGACY_DEVICE",
    "MAX_BODY_CHARS",
    "UPDATE",
    "PackageSpec",
    "ReleaseBody",
    "parse_body",
    "render_problems",
]

CHANNELS = ("stable", "prerelease", "beta")
INSTALL = "install"
UPDATE = "update"

# The single-device form predates the Raspberry Pi 2; it always meant the first Pi.
LEGACY_DEVICE = "RPi"

# GitHub caps a release body at 125,000 characters. Anything much longer did not
# come from GitHub, and the pure-Python YAML parser would spend seconds on it.
MAX_BODY_CHARS = 200_000

# (field name, hex digits): MD5 for the installer's image, SHA-1 for the updater.
_CHECKSUM_FIELDS = {INSTALL: ("md5sum", 32), UPDATE: ("shasum", 40)}
_PACKAGE_FIELDS = frozenset({"file", "md5sum", "shasum", "url"})
_HEX = re.compile(r"[0-9a-f]+")
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_LEADING_TABS = re.compile(r"^[ \t]+", re.MULTILINE)

# Bounds on turning YAML values into text: an alias bomb (`&a [*b, *b, ...]`)
# or a self-referencing list is tiny as text but huge or endless as a tree.
_RENDER_ITEMS = 64
_RENDER_DEPTH = 4
_SHOWN_CHARS = 48


@dataclass(frozen=True)
class PackageSpec:
    """One install image or update package as the body declares it."""

    device: str
    kind: str
    file: str | None
    checksum: str | None
    url: str | None
    problem: str | None

    @property
    def usable(self) -> bool:
        """True when the package may be served (assets permitting)."""
        return self.problem is None and self.checksum is not None


@dataclass(frozen=True)
class ReleaseBody:
    """What a release body says; see :func:`parse_body`."""

    channel: str | None
    changes: tuple[str, ...]
    packages: tuple[PackageSpec, ...]
    problems: tuple[str, ...]
    #: The staged rollout of the ``rollout:`` section (docs/rollouts.md).
    rollout: Plan | None = None
    #: A ``rollout:`` section that cannot be used keeps the release from devices.
    rollout_broken: bool = False

    @property
    def usable(self) -> bool:
        """True when the release may be served at all (it names its channel)."""
        return self.channel is not None and not self.rollout_broken

    def package(self, kind: str, device: str) -> PackageSpec | None:
        """The ``install`` or ``update`` package for a device, usable or not."""
        wanted = device.casefold()
        for spec in self.packages:
            if spec.kind == kind and spec.device.casefold() == wanted:
                return spec
        return None

    @property
    def devices(self) -> frozenset[str]:
        """Every device named in ``install`` or ``update``, as written."""
        return frozenset(spec.device for spec in self.packages)


def parse_body(text: str | None) -> ReleaseBody:
    """Parse a release body; never raises, whatever the text."""
    if not isinstance(text, str) or not text.strip():
        return _unusable("the release body is empty")
    if len(text) > MAX_BODY_CHARS:
        return _unusable(f"the release body is over {MAX_BODY_CHARS} characters")

    data, error = _load_yaml(text)
    if error is not None:
        return _unusable(f"the release body is not valid YAML ({error})")
    if not isinstance(data, dict):
        what = _type_name(data)
        return _unusable(f"the release body is {what}, not YAML keys such as channel:")
    return _read_document(_lower_keys(data))


def render_problems(body: ReleaseBody) -> list[str]:
    """Every problem of a body, release-level first, for one operator report."""
    package_problems = [
        f"{s.device} {s.kind}: {s.problem}" for s in body.packages if s.problem
    ]
    return [*body.problems, *package_problems]


def _unusable(problem: str) -> ReleaseBody:
    return ReleaseBody(channel=None, changes=(), packages=(), problems=(problem,))


def _read_document(top: dict[str, Any]) -> ReleaseBody:
    notes: list[str] = []
    channel = _channel(top, notes)
    changes = _changes(top.get("changes"), notes)

    packages: list[PackageSpec] = []
    for kind in (INSTALL, UPDATE):
        if kind in top:
            packages.extend(_section(kind, top[kind], notes))
    if channel is not None and INSTALL not in top and UPDATE not in top:
        notes.append("the release body has no install or update section")
    rollout, broken = _rollout(top, channel, notes)
    return ReleaseBody(channel, changes, tuple(packages), tuple(notes), rollout, broken)


def _rollout(
    top: dict[str, Any], channel: str | None, notes: list[str]
) -> tuple[Plan | None, bool]:
    """The plan of the ``rollout:`` section, and whether it breaks the release."""
    if "rollout" not in top or channel is None:
        return None, False
    if channel not in ROLLOUT_CHANNELS:
        notes.append(f"rollout: a {channel} release goes to its testers at once")
        return None, False
    plan, reason = parse_plan(top["rollout"])
    if plan is None:
        # Serving it to everyone would defeat the plan its author wrote.
        notes.append(f"rollout: {reason}; not served until the plan is fixed")
        return None, True
    return plan, False


# --- YAML --------------------------------------------------------------------


# libyaml's safe loader builds the same objects as PyYAML's own, ten times faster;
# a catalog of thousands of releases is parsed at every start.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _safe_load(text: str) -> object:
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)


def _load_yaml(text: str) -> tuple[object, str | None]:
    """The parsed document, or None and a one-line reason."""
    try:
        return _safe_load(text), None
    except Exception as exc:
        # Not only YAMLError: PyYAML lets ValueError (a date like 2019-02-30, an
        # integer over Python's digit limit) and RecursionError (deep nesting)
        # escape, and one hand-written body must never stop a refresh.
        error = exc

    # YAML forbids tabs in indentation, but a body edited in a text editor may
    # indent with them; a second try with spaces rescues those bodies.
    # The first error is the one to report: it points at the text as written.
    if "\t" in text:
        with contextlib.suppress(Exception):
            return _safe_load(_untab(text)), None
    return None, _describe_error(error)


def _untab(text: str) -> str:
    return _LEADING_TABS.sub(lambda match: match.group().expandtabs(8), text)


def _describe_error(error: BaseException) -> str:
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        what = ", ".join(part for part in (error.context, error.problem) if part)
        return f"{what or 'unreadable'} at line {error.problem_mark.line + 1}"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _lower_keys(mapping: dict[Any, Any]) -> dict[str, Any]:
    # Keys are matched case-insensitively (`Channel:` happens); a key that is
    # not text (`16: stable`) cannot name anything we read.
    return {k.strip().lower(): v for k, v in mapping.items() if isinstance(k, str)}


# --- channel and changes -----------------------------------------------------


def _channel(top: dict[str, Any], notes: list[str]) -> str | None:
    raw = top.get("channel")
    if raw is None:
        notes.append("the release body has no channel (stable, prerelease or beta)")
        return None
    channel = raw.strip().lower() if isinstance(raw, str) else None
    if channel not in CHANNELS:
        shown = _show(raw)
        notes.append(f"channel {shown} is not stable, prerelease or beta")
        return None
    return channel


def _changes(raw: object, notes: list[str]) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        lines: Iterable[object] = raw.splitlines()
    elif isinstance(raw, list):
        lines = raw
    elif isinstance(raw, dict):
        # `- Fixed: the clock` without quotes is a one-key map to YAML.
        lines = [{key: value} for key, value in raw.items()]
    else:
        lines = [raw]
    texts = (_render(line, [_RENDER_ITEMS]) for line in lines if line is not None)
    return tuple(text for text in texts if text)


# --- install and update sections ---------------------------------------------


def _section(kind: str, raw: object, notes: list[str]) -> list[PackageSpec]:
    if raw is None or (isinstance(raw, list | dict) and not raw):
        notes.append(f"the {kind} section is empty")
        return []
    if isinstance(raw, list) or (isinstance(raw, dict) and _is_fields(raw)):
        # The legacy form: one package, for the first Pi.
        return [_package(LEGACY_DEVICE, kind, raw, notes)]
    if isinstance(raw, dict):
        return _per_device(kind, raw, notes)
    notes.append(
        f"the {kind} section is {_type_name(raw)}, not a list or a map of devices"
    )
    return []


def _is_fields(mapping: dict[Any, Any]) -> bool:
    # `install: {file: ..., md5sum: ...}` is the legacy form written as a map;
    # no device is called `file`.
    return any(isinstance(k, str) and k.lower() in _PACKAGE_FIELDS for k in mapping)


def _per_device(kind: str, raw: dict[Any, Any], notes: list[str]) -> list[PackageSpec]:
    packages: list[PackageSpec] = []
    seen: set[str] = set()
    for key, entry in raw.items():
        device = key.strip() if isinstance(key, str) else ""
        if not device:
            notes.append(f"{kind}: device name {_show(key)} is not a device id")
        elif device.casefold() in seen:
            notes.append(f"{kind}: device {device} is declared twice; the first counts")
        else:
            seen.add(device.casefold())
            packages.append(_package(device, kind, entry, notes))
    return packages


def _package(device: str, kind: str, raw: object, notes: list[str]) -> PackageSpec:
    """One device's package; its faults go to its ``problem``, hints to notes."""
    where = f"{device} {kind}"
    problems: list[str] = []
    fields = _fields(raw, where, problems, notes)

    file = _file(fields.get("file"), problems)
    url = _url(fields.get("url"), file, where, problems, notes)
    if file is None and url is None and not problems:
        problems.append("no file or url")
    checksum = _checksum(kind, fields, problems)

    problem = "; ".join(problems) if problems else None
    return PackageSpec(device, kind, file, checksum, url, problem)


def _fields(
    raw: object, where: str, problems: list[str], notes: list[str]
) -> dict[str, Any]:
    """The package's `key: value` pairs from a map or a list of one-key maps."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return _lower_keys(raw)
    if not isinstance(raw, list):
        problems.append(f"is {_type_name(raw)}, not file, checksum and url")
        return {}

    fields: dict[str, Any] = {}
    for number, entry in enumerate(raw, start=1):
        if isinstance(entry, dict):
            fields.update(_lower_keys(entry))
        else:
            # A stray line costs nothing as long as the real fields are there.
            notes.append(f"{where}: entry {number} is not a 'key: value' line")
    return fields


def _file(raw: object, problems: list[str]) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        problems.append(f"file {_show(raw)} is not a file name")
        return None
    return raw.strip() or None


def _url(
    raw: object, file: str | None, where: str, problems: list[str], notes: list[str]
) -> str | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    url = raw.strip() if isinstance(raw, str) else None
    if url is not None and _URL.fullmatch(url):
        return url

    # The body template's own placeholder ("an optional URL where ...") gets
    # copied verbatim; with a file to fall back on, that is only worth a note.
    reason = f"url {_show(raw)} is not an http(s) URL"
    if file is not None:
        notes.append(f"{where}: {reason}; the file is used instead")
    else:
        problems.append(reason)
    return None


def _checksum(kind: str, fields: dict[str, Any], problems: list[str]) -> str | None:
    name, digits = _CHECKSUM_FIELDS[kind]
    raw = fields.get(name)
    if raw is None:
        problems.append(f"no {name}")
        return None

    # A number is refused rather than turned back into text: YAML has already
    # dropped leading zeros or read the digits as octal.
    checksum = raw.strip().lower() if isinstance(raw, str) else ""
    if len(checksum) != digits or not _HEX.fullmatch(checksum):
        problems.append(f"{name} {_show(raw)} is not {digits} hex digits")
        return None
    return checksum


# --- turning YAML values into text -------------------------------------------


def _render(value: object, budget: list[int], depth: int = 0) -> str:
    """One line of text for any YAML value, bounded in size and depth."""
    budget[0] -= 1
    if budget[0] < 0 or depth > _RENDER_DEPTH:
        return "…"
    if isinstance(value, dict):
        items = itertools.islice(value.items(), max(budget[0], 1))
        return ", ".join(
            f"{_render(k, budget, depth + 1)}: {_render(v, budget, depth + 1)}"
            for k, v in items
        )
    if isinstance(value, list | tuple | set | frozenset):
        items = itertools.islice(value, max(budget[0], 1))
        return ", ".join(_render(item, budget, depth + 1) for item in items)
    return _scalar_text(value).strip()


def _scalar_text(value: object) -> str:
    try:
        return str(value)
    except ValueError:
        # Python refuses to print integers of more than 4,300 digits, and YAML
        # builds those from hex without complaint.
        return "a very large number"


def _show(value: object) -> str:
    """A value quoted for a problem sentence, cut short when long."""
    if isinstance(value, str):
        cut = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"
        return repr(cut)
    if isinstance(value, dict | list | tuple | set | frozenset):
        return f"({_type_name(value)})"
    return _scalar_text(value)[:_SHOWN_CHARS]


def _type_name(value: object) -> str:
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list | tuple | set | frozenset):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"
