"""Event ids are UUIDv7 in canonical lower-case form."""

from __future__ import annotations

import uuid

import pytest

from wire.ids import is_uuid7, new_event_id


def test_new_ids_are_canonical_version_7() -> None:
    value = new_event_id()
    parsed = uuid.UUID(value)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == value
    assert is_uuid7(value)


def test_ids_are_unique_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    "value",
    [
        str(uuid.uuid4()),
        "017F22E2-79B0-7CC3-98C4-DC0C0C07398F",
        "{017f22e2-79b0-7cc3-98c4-dc0c0c07398f}",
        "017f22e279b07cc398c4dc0c0c07398f",
        "urn:uuid:017f22e2-79b0-7cc3-98c4-dc0c0c07398f",
        "not-a-uuid",
        "",
    ],
)
def test_is_uuid7_refuses_other_forms(value: str) -> None:
    assert not is_uuid7(value)
