"""Loading a CSV of leads: one phone number column, every other column a dynamic variable.

A bad row never blocks the good ones: it is rejected with its line number and the reason
(number not E.164, duplicate, broken quoting, more fields than the header). A file that cannot
be read as a table of leads at all (missing, empty, not text, not in the expected encoding, no
phone column, duplicate column names) raises :class:`LeadFileError`: the encoding belongs to the
whole file, so a wrong one is reported once, with the fix, instead of skipping every row that
holds an accent.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .._validation import is_e164

PHONE_COLUMNS = ("phone_number", "to_number")
#: Formatting people put in numbers; removed before the E.164 check.
_FORMATTING = re.compile(r"[\s().\-]")
#: The first bytes of files people export or compress instead of a CSV, and what they are.
_NOT_TEXT = (
    (b"\x1f\x8b", "gzip-compressed data; decompress it first"),
    (b"PK\x03\x04", "a ZIP archive or an Excel .xlsx workbook; export the sheet as CSV UTF-8"),
    (b"\xd0\xcf\x11\xe0", "an Excel .xls workbook; export the sheet as CSV UTF-8"),
    (b"BZh", "bzip2-compressed data; decompress it first"),
    (b"\xfd7zXZ\x00", "xz-compressed data; decompress it first"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data; decompress it first"),
)
#: How much of the file is looked at for NUL bytes, which no text CSV holds.
_SNIFF_BYTES = 8192


class LeadFileError(Exception):
    """The file as a whole cannot be used; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Lead:
    """One valid lead. ``ref`` is stable for a given file: ``L`` and its first line number."""

    ref: str
    line: int
    to_number: str
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason: str
    raw_number: str | None = None

    @property
    def ref(self) -> str:
        return f"L{self.line}"


@dataclass(frozen=True, slots=True)
class LeadFile:
    path: Path
    sha256: str
    phone_column: str
    leads: list[Lead]
    rejected: list[Rejected]
    blank_lines: int


def normalize_e164(raw: str) -> str | None:
    """``raw`` as E.164 (spaces, dashes, dots and brackets removed), or ``None``."""
    number = _FORMATTING.sub("", raw)
    return number if is_e164(number) else None


def load_leads(path: Path, encoding: str | None = None) -> LeadFile:
    """The leads of the CSV at ``path``, decoded as ``encoding`` (default: UTF-8, with or
    without a byte order mark)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LeadFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise LeadFileError(f"{path}: cannot read it ({exc.strerror})") from None
    digest = hashlib.sha256(data).hexdigest()
    text = _decode(path, data, encoding)
    if not text.strip():
        raise LeadFileError(f"{path}: the file is empty; expected a header row with a phone_number")
    rows = _records(text)
    header_line, header = next(((n, r) for n, r in rows if any(c.strip() for c in r)), (0, []))
    names = [_clean_name(name) for name in header]
    phone = _phone_column(path, names, header_line)
    duplicates = sorted({n for n in names if n and names.count(n) > 1})
    if duplicates:
        raise LeadFileError(
            f"{path}:{header_line}: duplicate column names {', '.join(duplicates)}; "
            "rename them so each dynamic variable has one value"
        )
    leads: list[Lead] = []
    rejected: list[Rejected] = []
    first_seen: dict[str, int] = {}
    blank = 0
    phone_index = names.index(phone)
    for line, record in rows:
        if not any(cell.strip() for cell in record):
            blank += 1
            continue
        if isinstance(record, _BadRecord):
            rejected.append(Rejected(line, record.reason))
            continue
        outcome = _lead(line, record, names, phone_index, first_seen)
        if isinstance(outcome, Rejected):
            rejected.append(outcome)
        else:
            first_seen[outcome.to_number] = line
            leads.append(outcome)
    if not leads and not rejected:
        raise LeadFileError(f"{path}: the header is there but no lead follows it")
    return LeadFile(path, digest, phone, leads, rejected, blank)


def _decode(path: Path, data: bytes, encoding: str | None) -> str:
    if encoding is None and data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LeadFileError(
            f"{path}: the file is UTF-16; save it as UTF-8 (CSV UTF-8 in Excel) or pass "
            "--encoding utf-16"
        )
    _refuse_binary(path, data, encoding)
    try:
        # A byte order mark is not part of the first column's name, whatever the encoding.
        return data.decode(encoding or "utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = f"byte 0x{data[exc.start]:02x}"
        if encoding is not None:
            raise LeadFileError(
                f"{path}:{line}: {byte} is not {encoding}; pass the file's encoding with "
                "--encoding, or save it as CSV UTF-8"
            ) from None
        raise LeadFileError(f"{path}:{line}: {byte} is not UTF-8; {_encoding_hint(data)}") from None


def _refuse_binary(path: Path, data: bytes, encoding: str | None) -> None:
    for magic, what in _NOT_TEXT:
        if data.startswith(magic):
            raise LeadFileError(f"{path}: not a text CSV ({what})")
    wide = encoding is not None and codecs.lookup(encoding).name.startswith(("utf-16", "utf-32"))
    if not wide and b"\x00" in data[:_SNIFF_BYTES]:
        raise LeadFileError(
            f"{path}: not a text CSV (it holds NUL bytes: binary data, or UTF-16 without a byte "
            "order mark, which --encoding utf-16-le reads); export it as CSV UTF-8"
        )


def _encoding_hint(data: bytes) -> str:
    """What to do about a file that is not UTF-8: most are Windows/Excel exports in cp1252."""
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return "pass its encoding with --encoding (e.g. latin-1), or save it as CSV UTF-8"
    return (
        "it looks like a Windows/Excel export: run again with --encoding cp1252, or save it as "
        "CSV UTF-8"
    )


class _BadRecord(list[str]):
    """A record the csv module could not parse; it stands in the stream with its reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(["?"])
        self.reason = reason


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """``(first line number, fields)`` of every record, blank lines included as ``[]``."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line, _BadRecord(f"not valid CSV ({exc})")
            line = reader.line_num + 1
            continue
        yield line, record
        line = reader.line_num + 1


def _clean_name(name: str) -> str:
    return name.strip()


def _phone_column(path: Path, names: list[str], header_line: int) -> str:
    lowered = {name.lower(): name for name in names}
    for candidate in PHONE_COLUMNS:
        if candidate in lowered:
            return lowered[candidate]
    shown = ", ".join(repr(n) for n in names[:10]) or "none"
    raise LeadFileError(
        f"{path}:{header_line}: no phone_number (or to_number) column; the header has {shown}"
    )


def _lead(
    line: int, record: list[str], names: list[str], phone_index: int, first_seen: dict[str, int]
) -> Lead | Rejected:
    if len(record) > len(names):
        return Rejected(line, f"{len(record)} fields but the header has {len(names)}")
    raw = record[phone_index].strip() if phone_index < len(record) else ""
    if not raw:
        return Rejected(line, "no phone number")
    number = normalize_e164(raw)
    if number is None:
        return Rejected(line, f"{raw!r} is not an E.164 number like +14155550100", raw)
    if number in first_seen:
        return Rejected(line, f"duplicate of line {first_seen[number]} ({number})", raw)
    variables = {
        name: value
        for index, (name, value) in enumerate(zip(names, record, strict=False))
        if index != phone_index and name
    }
    return Lead(f"L{line}", line, number, variables)
