"""RFC 6901 JSON Pointers, checked against the RFC's examples and the jsonpointer package."""

from __future__ import annotations

from typing import Any

import jsonpointer
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.sources.pointer import MISSING, JsonPointer, PointerSyntaxError, compile_pointer

RFC_DOCUMENT = {
    "foo": ["bar", "baz"],
    "": 0,
    "a/b": 1,
    "c%d": 2,
    "e^f": 3,
    "g|h": 4,
    "i\\j": 5,
    'k"l': 6,
    " ": 7,
    "m~n": 8,
}


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        ("", RFC_DOCUMENT),
        ("/foo", ["bar", "baz"]),
        ("/foo/0", "bar"),
        ("/", 0),
        ("/a~1b", 1),
        ("/c%d", 2),
        ("/e^f", 3),
        ("/g|h", 4),
        ("/i\\j", 5),
        ('/k"l', 6),
        ("/ ", 7),
        ("/m~0n", 8),
    ],
)
def test_rfc_6901_examples(pointer: str, expected: Any) -> None:
    assert JsonPointer(pointer).get(RFC_DOCUMENT) == expected


@pytest.mark.parametrize(
    "pointer",
    ["/nope", "/foo/2", "/foo/-", "/foo/01", "/foo/bar", "/foo/0/x", "/ /x", "/m~1n"],
)
def test_pointers_to_nothing_give_missing(pointer: str) -> None:
    assert JsonPointer(pointer).get(RFC_DOCUMENT) is MISSING


def test_missing_is_distinct_from_null_and_falsy() -> None:
    assert JsonPointer("/a").get({"a": None}) is None
    assert JsonPointer("/a").get({}) is MISSING
    assert not MISSING
    assert repr(MISSING) == "MISSING"


@pytest.mark.parametrize("text", ["foo", "a/b", "/a~2", "/a~", "/~x/b"])
def test_malformed_pointers_are_refused(text: str) -> None:
    with pytest.raises(PointerSyntaxError):
        JsonPointer(text)


def test_compiled_pointers_are_shared_and_comparable() -> None:
    assert compile_pointer("/a/b") is compile_pointer("/a/b")
    assert JsonPointer("/a") == JsonPointer("/a")
    assert {JsonPointer("/a"), JsonPointer("/a")} == {JsonPointer("/a")}
    assert str(JsonPointer("/a~1b")) == "/a~1b"
    assert JsonPointer("/a~1b/~0").tokens == ("a/b", "~")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(alphabet="ab/~0 1", max_size=3), inner, max_size=4)
    ),
    max_leaves=20,
)
tokens = st.text(alphabet="ab/~01 -", max_size=3)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@given(document=json_values, path=st.lists(tokens, max_size=4))
def test_agrees_with_the_jsonpointer_package(document: Any, path: list[str]) -> None:
    text = "".join("/" + _escape(t) for t in path)
    ours = JsonPointer(text).get(document)
    try:
        theirs = jsonpointer.resolve_pointer(document, text)
    except jsonpointer.JsonPointerException:
        theirs = MISSING
    if isinstance(theirs, jsonpointer.EndOfList):
        theirs = MISSING  # "-" names the element after the last: there is nothing there
    assert ours == theirs if ours is not MISSING else theirs is MISSING


@given(document=json_values)
def test_every_path_in_a_document_resolves_to_its_value(document: Any) -> None:
    def walk(value: Any, path: tuple[str, ...]) -> None:
        assert JsonPointer("".join("/" + _escape(t) for t in path)).get(document) == value
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, str(index)))

    walk(document, ())
