"""The BOM submission document and the indented CSV import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wire.bom import parse_submission, revision_order
from wire.bom_csv import parse_bom_csv
from wire.errors import WireValidationError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "bom-example.csv"


def revision(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "product": "FG",
        "revision": "A",
        "status": "released",
        "unit": "Units",
        "lines": [{"product": "C1", "quantity": 2, "unit": "Units"}],
    }
    return {**base, **changes}


def test_a_minimal_submission_round_trips() -> None:
    parsed = parse_submission({"revisions": [revision(effective_at="2030-01-02T03:04:05+01:00")]})
    wire = parsed.to_wire()
    assert wire["revisions"][0]["effective_at"] == "2030-01-02T02:04:05Z"
    assert parse_submission(wire) == parsed


@pytest.mark.parametrize(
    ("changes", "location"),
    [
        ({"lines": []}, "/revisions/0/lines"),
        (
            {"lines": [{"product": "C1", "quantity": 0, "unit": "Units"}]},
            "/revisions/0/lines/0/quantity",
        ),
        (
            {"lines": [{"product": "C1", "quantity": True, "unit": "Units"}]},
            "/revisions/0/lines/0/quantity",
        ),
        ({"lines": [{"product": "C1", "quantity": 1}]}, "/revisions/0/lines/0/unit"),
        ({"type": "phantom"}, "/revisions/0/type"),
        ({"revision": "a b"}, "/revisions/0/revision"),
        ({"effective_at": "2030-01-02 03:04"}, "/revisions/0/effective_at"),
        ({"plants": [{}]}, "/revisions/0/plants/0"),
        ({"extra": 1}, "/revisions/0/extra"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], location: str) -> None:
    with pytest.raises(WireValidationError) as caught:
        parse_submission({"revisions": [revision(**changes)]})
    assert caught.value.location == location


def test_content_hash_ignores_status_only() -> None:
    a = parse_submission({"revisions": [revision()]}).revisions[0]
    b = parse_submission({"revisions": [revision(status="approved")]}).revisions[0]
    c = parse_submission({"revisions": [revision(quantity=2)]}).revisions[0]
    assert a.content_hash() == b.content_hash() != c.content_hash()


def test_revision_order() -> None:
    ordered = ["1", "2", "9", "10", "A", "B", "Z", "AA", "AB"]
    assert sorted(reversed(ordered), key=revision_order) == ordered
    assert revision_order("A.2") < revision_order("A.10")
    assert revision_order("b") == revision_order("B")


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_numeric_revisions_order_as_numbers(a: int, b: int) -> None:
    assert (revision_order(str(a)) < revision_order(str(b))) == (a < b)


def test_example_csv_is_three_levels_bottom_up() -> None:
    submission = parse_bom_csv(EXAMPLE.read_text())
    keys = [r.key for r in submission.revisions]
    assert keys == [("HSG-10", "B"), ("SEAL-KIT", "A"), ("GB-100", "C")]
    top = submission.revisions[-1]
    assert [o.name for o in top.operations] == ["Assemble", "Test"]
    assert [(line.product, line.revision) for line in top.lines] == [
        ("HSG-10", "B"),
        ("SEAL-KIT", "A"),
        ("OIL", None),
    ]
    assert submission.revisions[1].type == "kit"


@pytest.mark.parametrize(
    ("text", "location"),
    [
        ("part_number,quantity\nA,1\n", "row 1"),
        ("level,part_number,revision,unit\nx,A,1,Units\n", "row 2/level"),
        ("level,part_number,revision,unit\n1,A,1,Units\n", "row 2/level"),
        ("level,part_number,revision,unit,quantity\n0,A,1,Units,\n2,B,,Units,1\n", "row 3/level"),
        ("level,part_number,revision,unit,quantity\n0,A,,Units,\n1,B,,Units,1\n", "row 2/revision"),
        (
            "level,part_number,revision,unit,quantity\n0,A,1,Units,\n1,B,,Units,two\n",
            "row 3/quantity",
        ),
    ],
)
def test_csv_errors_name_row_and_column(text: str, location: str) -> None:
    with pytest.raises(WireValidationError) as caught:
        parse_bom_csv(text)
    assert caught.value.location == location
