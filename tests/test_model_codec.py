"""The shapes of the report's dataclasses, read once from their type hints, and the JSON form built from them."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Union

import pytest

from muslcheck.model.codec import Items, Member, Plain, Record, StrMapping, builder, shape_of
from muslcheck.model.report import Component, FileReport, Report, Skip, TargetInfo, Verdict

NONE = type(None)


@pytest.mark.parametrize(("hint", "shape"), [
    (str, Plain(frozenset({str}))),
    (bool, Plain(frozenset({bool}))),
    (float, Plain(frozenset({float, int}))),
    (str | None, Plain(frozenset({str, NONE}))),
    (Optional[int], Plain(frozenset({int, NONE}))),  # noqa: UP045 (the typing spelling reads the same)
    (Union[int, str], Plain(frozenset({int, str}))),  # noqa: UP007 (so does this one)
    (Verdict, Member(Verdict)),
    (tuple[str, ...], Items(Plain(frozenset({str})))),
    (dict[str, str], StrMapping(Plain(frozenset({str})))),
    (tuple[Skip, ...], Items(Record(Skip, (("path", Plain(frozenset({str}))), ("reason", Plain(frozenset({str}))),
                                           ("unchecked", Plain(frozenset({bool}))))))),
])
def test_shapes_of_the_kinds_of_field_a_report_holds(hint: Any, shape: Any) -> None:
    assert shape_of(hint) == shape


def test_a_record_lists_every_field_in_order() -> None:
    for cls in (Report, FileReport, Component, TargetInfo):
        record = shape_of(cls)
        assert isinstance(record, Record) and record.cls is cls
        assert [name for name, _ in record.fields] == [f.name for f in dataclasses.fields(cls)]
    assert dict(shape_of(Report).fields)["files"] == Items(shape_of(FileReport))  # type: ignore[union-attr]


@dataclasses.dataclass(frozen=True)
class _KeywordOnly:
    name: str = dataclasses.field(kw_only=True)


@dataclasses.dataclass(frozen=True)
class _Derived:
    name: str
    length: int = dataclasses.field(init=False, default=0)


@pytest.mark.parametrize("hint", [
    frozenset[int], list[str], tuple[int, Verdict], dict[int, str], dict[str, Verdict], set,
    str | Verdict, _KeywordOnly, _Derived, tuple[frozenset[int], ...],
], ids=repr)
def test_a_hint_no_codec_handles_is_refused(hint: Any) -> None:
    with pytest.raises(TypeError, match="no codec handles"):
        shape_of(hint)


def test_an_optional_enum_is_a_member_that_may_be_none() -> None:
    assert shape_of(Verdict | None) == Member(Verdict, optional=True)
    assert builder(Verdict | None)(None) is None
    assert builder(Verdict | None)("blocked") is Verdict.BLOCKED


def test_builder_makes_tuples_enums_and_records_from_json_values() -> None:
    skip = builder(Skip)({"path": "/a", "reason": "r", "unchecked": False})
    assert skip == Skip("/a", "r", False)
    assert builder(tuple[Verdict, ...])(["blocked", "native"]) == (Verdict.BLOCKED, Verdict.NATIVE)
    assert builder(tuple[str, ...])(["x"]) == ("x",)
    selected = {"x86_64": "/a"}
    built = builder(dict[str, str])(selected)
    assert built == selected and built is not selected
    with pytest.raises(ValueError, match="maybe"):
        builder(Verdict)("maybe")


def test_builder_ignores_unknown_keys_and_takes_defaults_for_missing_ones() -> None:
    """A newer 1.x writer's fields are skipped; an older writer's missing ones take their defaults."""
    assert builder(Skip)({"path": "/a", "reason": "r", "added-later": [1, 2]}) == Skip("/a", "r")
    with pytest.raises(TypeError):
        builder(Skip)({"path": "/a"})  # a field without a default is required
