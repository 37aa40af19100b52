"""json_shape.py: the one JSON shape kit of the webhook parser, the
message-body checks and the football feed. Each checker raises the caller's own error."""

from __future__ import annotations

import pytest

from json_shape import brief, expect_list, expect_object, join_path, json_kind, type_name


class CallerError(ValueError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


@pytest.mark.parametrize(
    ("value", "kind"),
    [({}, "object"), ([], "list"), ((), "list"), ("x", "string"), (True, "boolean"), (1, "number"),
     (1.5, "number"), (None, "null"), (b"x", "bytes")],
)
def test_json_kind_names_the_json_type(value, kind):
    assert json_kind(value) == kind


def test_type_name_is_pythons():
    assert [type_name(v) for v in ({}, "x", 1)] == ["dict", "str", "int"]


def test_join_path_indexes_and_keys():
    assert join_path("", "entry") == "entry"
    assert join_path("entry", 0) == "entry[0]"
    assert join_path("entry[0]", "changes") == "entry[0].changes"


def test_brief_cuts_long_values():
    assert brief("abc") == "'abc'"
    assert brief("x" * 100) == repr("x" * 100)[:57] + "..."


def test_expect_object_returns_a_mapping_or_raises_the_callers_error():
    assert expect_object({"a": 1}, "p", CallerError) == {"a": 1}
    with pytest.raises(CallerError) as err:
        expect_object([1], "entry[0]", CallerError)
    assert (err.value.path, err.value.reason) == ("entry[0]", "expected an object, got list")
    with pytest.raises(CallerError, match="expected an object, got str"):
        expect_object("x", "p", CallerError, describe=type_name)


def test_expect_list_refuses_tuples_unless_asked():
    items = [1, 2]
    assert expect_list(items, "p", CallerError) is items
    assert expect_list((1,), "p", CallerError, tuples=True) == (1,)
    with pytest.raises(CallerError, match=r"^p: expected a list"):
        expect_list((1,), "p", CallerError)
    with pytest.raises(CallerError, match=r"^p: expected a list, got object$"):
        expect_list({}, "p", CallerError)
