"""CSV loading: clear messages for unusable files, and no good row lost to a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from aioretell.dial.leads import LeadFileError, load_leads


def test_good_file_variables_and_refs(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("phone_number,customer_name,plan\n+14155550101,Ada,pro\n", encoding="utf-8")
    loaded = load_leads(path)
    (lead,) = loaded.leads
    assert (lead.ref, lead.line, lead.to_number) == ("L2", 2, "+14155550101")
    assert lead.variables == {"customer_name": "Ada", "plan": "pro"}
    assert len(loaded.sha256) == 64


def test_to_number_column_and_formatting_removed(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text('\ufeffTo_Number\n"+1 (415) 555-0102"\n', encoding="utf-8")
    assert [lead.to_number for lead in load_leads(path).leads] == ["+14155550102"]


def test_missing_phone_column_names_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("name,phone\nAda,+14155550101\n", encoding="utf-8")
    with pytest.raises(LeadFileError, match=r"no phone_number \(or to_number\) column.*'phone'"):
        load_leads(path)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(content)
    with pytest.raises(LeadFileError, match="the file is empty"):
        load_leads(path)


def test_header_without_rows(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("phone_number,name\n", encoding="utf-8")
    with pytest.raises(LeadFileError, match="no lead follows"):
        load_leads(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LeadFileError, match="no such file"):
        load_leads(tmp_path / "nope.csv")


def test_utf16_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes("phone_number\n+14155550101\n".encode("utf-16"))
    with pytest.raises(LeadFileError, match="UTF-16; save it as UTF-8"):
        load_leads(path)


def test_duplicate_columns_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("phone_number,name,name\n+14155550101,a,b\n", encoding="utf-8")
    with pytest.raises(LeadFileError, match="duplicate column names name"):
        load_leads(path)


def test_a_file_not_in_utf8_is_refused_whole_with_the_fix(tmp_path: Path) -> None:
    # Skipping the accented rows would journal them as rejected: a rerun with the right
    # encoding could then never dial them. The encoding is the file's, so the file is refused.
    path = tmp_path / "leads.csv"
    path.write_bytes(
        b"phone_number,name\n+14155550101,Ana\n+14155550102,Jos\xe9\n+14155550103,Zoe\n"
    )
    with pytest.raises(LeadFileError, match=r"leads.csv:3: byte 0xe9 is not UTF-8; .*Excel") as e:
        load_leads(path)
    assert "--encoding cp1252" in str(e.value)


def test_not_cp1252_either_suggests_naming_the_encoding(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(b"phone_number,name\n+14155550101,\x81\xe9\n")  # 0x81: no cp1252 char
    with pytest.raises(LeadFileError, match=r"is not UTF-8; pass its encoding with --encoding"):
        load_leads(path)


def test_encoding_reads_a_windows_export(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    text = "phone_number,name,city\n+14155550101,José,Zürich\n+14155550102,Zoë,Besançon\n"
    path.write_bytes(text.encode("cp1252"))
    loaded = load_leads(path, encoding="cp1252")
    assert [lead.variables for lead in loaded.leads] == [
        {"name": "José", "city": "Zürich"},
        {"name": "Zoë", "city": "Besançon"},
    ]
    assert loaded.rejected == []


def test_wrong_explicit_encoding_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(b"phone_number\n+14155550101\n+1415555010\x81\n")
    with pytest.raises(LeadFileError, match=r"leads.csv:3: byte 0x81 is not cp1252"):
        load_leads(path, encoding="cp1252")


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-8-sig", "utf-8"])
def test_explicit_encodings_with_and_without_bom(tmp_path: Path, codec: str) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes("phone_number,name\n+14155550101,Zoë\n".encode(codec))
    (lead,) = load_leads(path, encoding=codec).leads
    assert (lead.to_number, lead.variables) == ("+14155550101", {"name": "Zoë"})


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"\x1f\x8b\x08\x00\x00\x00", "gzip-compressed data"),
        (b"PK\x03\x04\x14\x00", "a ZIP archive or an Excel .xlsx workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1", "an Excel .xls workbook"),
        (b"phone_number\n+14155550101\x00\x00\n", "it holds NUL bytes"),
        ("phone_number\n+14155550101\n".encode("utf-16-le"), "UTF-16 without a byte order mark"),
    ],
)
def test_binary_input_is_not_a_text_csv(tmp_path: Path, content: bytes, what: str) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(content)
    with pytest.raises(LeadFileError, match="not a text CSV") as e:
        load_leads(path)
    assert what in str(e.value)


def test_blank_lines_are_skipped_and_lines_still_count(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("\nphone_number\n\n+14155550101\n   \n\n+14155550102\n\n", encoding="utf-8")
    loaded = load_leads(path)
    assert [(lead.line, lead.to_number) for lead in loaded.leads] == [
        (4, "+14155550101"),
        (7, "+14155550102"),
    ]
    assert loaded.rejected == []
    assert loaded.blank_lines >= 4


def test_ten_thousand_rows_with_a_few_bad(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    rows = ["phone_number,name"]
    bad_lines: dict[int, str] = {}
    for i in range(10_000):
        line = i + 2
        number = f"+1{200 + i // 100}555{i % 100:04d}"
        if i == 17:
            number = "0415 555 0100"  # no country code
            bad_lines[line] = "not an E.164 number"
        elif i == 4242:
            number = ""
            bad_lines[line] = "no phone number"
        elif i == 9001:
            number = "+1200" + "5550000"  # the first row's number again
            bad_lines[line] = "duplicate of line 2"
        elif i == 9500:
            rows.append(f"{number},x,surplus")
            bad_lines[line] = "3 fields but the header has 2"
            continue
        rows.append(f"{number},Lead {i}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    loaded = load_leads(path)
    assert len(loaded.leads) == 10_000 - len(bad_lines)
    assert {r.line: r.reason for r in loaded.rejected}.keys() == bad_lines.keys()
    for rejected in loaded.rejected:
        assert bad_lines[rejected.line] in rejected.reason
    assert len({lead.to_number for lead in loaded.leads}) == len(loaded.leads)


def test_broken_quoting_rejects_the_record_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text('phone_number,name\n+14155550101,"Ana"x\n+14155550102,Bo\n', encoding="utf-8")
    loaded = load_leads(path)
    assert [lead.to_number for lead in loaded.leads] == ["+14155550102"]
    assert loaded.rejected[0].line == 2
    assert "not valid CSV" in loaded.rejected[0].reason
