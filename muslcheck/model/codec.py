"""What the fields of the report's dataclasses (and of the facts the cache keeps per layer) hold, read once from
their type hints.

``shape_of(hint)`` turns a type hint into a ``Shape``. The report's JSON form (``builder``, behind
``Report.from_dict``) and the cache's columnar codec (``muslcheck.cache.codec``) are both built from shapes, so a
field type is handled, or refused with ``TypeError``, by both alike, and ``typing.get_type_hints`` runs once per
class. A new field of a known kind needs no change here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import cache
from operator import attrgetter
from typing import Any


@dataclass(frozen=True)
class Plain:
    """A JSON-native value of exactly one of ``types`` (``True`` is not an ``int``; a ``float`` may be an ``int``)."""

    types: frozenset[type]


@dataclass(frozen=True)
class Member:
    """A member of ``enum``, written as its value; ``None`` too when ``optional``."""

    enum: type[Enum]
    optional: bool = False


@dataclass(frozen=True)
class Items:
    """``tuple[X, ...]``, written as a list."""

    item: Shape


@dataclass(frozen=True)
class StrMapping:
    """``dict[str, V]`` with V plain, written as an object."""

    values: Plain


@dataclass(frozen=True)
class Bytes:
    """``bytes``, written as base64 text (JSON has no bytes)."""


@dataclass(frozen=True)
class StrSet:
    """``frozenset[str]``, written as a sorted list."""


@dataclass(frozen=True)
class Fixed:
    """``tuple[X, Y]``: a fixed number of plain items, written as a list of that length."""

    items: tuple[Plain, ...]


@dataclass(frozen=True)
class Maybe:
    """``X | None`` for an X that is not plain and no enum (a dataclass, bytes, a set, a tuple)."""

    value: Shape


@dataclass(frozen=True)
class Record:
    """A dataclass: (name, shape) of each field, in order."""

    cls: type
    fields: tuple[tuple[str, Shape], ...]


Shape = Plain | Member | Items | StrMapping | Record | Bytes | StrSet | Fixed | Maybe

_PLAIN: dict[Any, frozenset[type]] = {
    str: frozenset({str}),
    int: frozenset({int}),
    bool: frozenset({bool}),
    float: frozenset({float, int}),
    type(None): frozenset({type(None)}),
}


@cache
def shape_of(hint: Any) -> Shape:
    """The shape of a value of type ``hint``; ``TypeError`` for a hint no codec handles."""
    plain = _plain_types(hint)
    if plain is not None:
        return Plain(plain)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return Member(hint)
    if (enum := _optional_enum(hint)) is not None:
        return Member(enum, optional=True)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record(hint)
    if hint is bytes:
        return Bytes()
    if (value := _optional_other(hint)) is not None:
        return Maybe(shape_of(value))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is frozenset and args == (str,):
        return StrSet()
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return Items(shape_of(args[0]))
    if origin is tuple and args and Ellipsis not in args:
        items = [shape_of(arg) for arg in args]
        if all(isinstance(item, Plain) for item in items):
            return Fixed(tuple(typing.cast(list[Plain], items)))
    if origin is dict and args[0] is str:
        values = shape_of(args[1])
        if isinstance(values, Plain):
            return StrMapping(values)
    raise TypeError(f"no codec handles {hint!r}")


def _optional_enum(hint: Any) -> type[Enum] | None:
    """E for ``E | None`` with E an enum, else None."""
    if typing.get_origin(hint) not in (types.UnionType, typing.Union):
        return None
    members = [m for m in typing.get_args(hint) if m is not type(None)]
    if len(members) == 1 and len(typing.get_args(hint)) == 2 and isinstance(members[0], type) \
            and issubclass(members[0], Enum):
        return members[0]
    return None


def _optional_other(hint: Any) -> Any:
    """X for ``X | None`` with X neither plain nor an enum (those have their own optional forms), else None."""
    if typing.get_origin(hint) not in (types.UnionType, typing.Union):
        return None
    args = typing.get_args(hint)
    members = [m for m in args if m is not type(None)]
    if len(args) != 2 or len(members) != 1 or _plain_types(members[0]) is not None:
        return None
    if isinstance(members[0], type) and issubclass(members[0], Enum):
        return None
    return members[0]


def _plain_types(hint: Any) -> frozenset[type] | None:
    """The exact types a plain (possibly optional) hint allows, or None when it is not plain."""
    if typing.get_origin(hint) not in (types.UnionType, typing.Union):
        return _PLAIN.get(hint)
    allowed: frozenset[type] = frozenset()
    for member in typing.get_args(hint):
        member_types = _plain_types(member)
        if member_types is None:
            return None
        allowed |= member_types
    return allowed


def _record(cls: type) -> Record:
    """Fields are passed positionally (the cache builds rows with ``map(cls, *columns)``): none may be
    keyword-only or left out of ``__init__``."""
    fields = dataclasses.fields(cls)
    if any(f.kw_only or not f.init for f in fields):
        raise TypeError(f"no codec handles {cls.__name__}: it has keyword-only or non-init fields")
    hints = typing.get_type_hints(cls)
    return Record(cls, tuple((f.name, shape_of(hints[f.name])) for f in fields))


def builder(hint: Any) -> Callable[[Any], Any]:
    """A function that builds a value of type ``hint`` from its JSON form (as ``json.loads`` returns it).

    An object's keys that name no field are ignored (a newer writer's), a missing one takes the field's default.
    Values are not type-checked (the cache's codec, which must not trust its input, checks every one).
    """
    return _builder_of(hint)


@cache
def _builder_of(hint: Any) -> Callable[[Any], Any]:
    return _build(shape_of(hint))


def _build(shape: Shape) -> Callable[[Any], Any]:
    if isinstance(shape, Plain):
        return _same
    if isinstance(shape, Member):
        enum = shape.enum
        return (lambda value: None if value is None else enum(value)) if shape.optional else enum
    if isinstance(shape, StrMapping):
        return dict
    if isinstance(shape, StrSet):
        return frozenset
    if isinstance(shape, Fixed):
        return tuple
    if isinstance(shape, Maybe):
        value = _build(shape.value)
        return lambda item: None if item is None else value(item)
    if isinstance(shape, Bytes):
        raise TypeError("bytes have no JSON form in a report (only the cache's codec writes them)")
    if isinstance(shape, Items):
        item = _build(shape.item)
        return tuple if item is _same else lambda value: tuple(map(item, value))
    cls, fields = shape.cls, {name: _build(field) for name, field in shape.fields}
    return lambda value: cls(**{k: fields[k](v) for k, v in value.items() if k in fields})


def _same(value: Any) -> Any:
    return value


_C = typing.TypeVar("_C", bound=type)


def pickled_by_fields(cls: _C) -> _C:
    """A frozen slotted dataclass pickled as a call of the class with its fields' values. The dataclass's own
    ``__getstate__``/``__setstate__`` run Python code per field: the 40,000 findings a worker sends back for 1,000
    files took three times as long to pickle and twice as long to unpickle."""
    values = _field_values(cls)[1]

    def __reduce__(self: Any) -> tuple[type, tuple[Any, ...]]:
        return cls, values(self)

    cls.__reduce__ = __reduce__  # type: ignore[method-assign, assignment]
    return cls


def fields_of(value: Any) -> dict[str, Any]:
    """A dataclass instance's fields by name, in order: ``vars`` for the slotted ones too."""
    names, values = _field_values(type(value))
    return dict(zip(names, values(value), strict=True))


def _field_values(cls: type) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    """A dataclass's field names, and a function giving an instance's values of them (at C speed)."""
    found = _FIELD_VALUES.get(cls)
    if found is None:
        names = tuple(f.name for f in dataclasses.fields(cls))
        get = attrgetter(*names)
        found = _FIELD_VALUES[cls] = names, (get if len(names) > 1 else lambda value: (get(value),))
    return found


_FIELD_VALUES: dict[type, tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]] = {}
