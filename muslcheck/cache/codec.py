"""A Report (or the judging a scan keeps, ``JudgedState``) as a cache payload and back: JSON only (no pickle, no
marshal), every decoded value checked.

A payload is zlib(JSON [codec version, shape digest, string table, row]), built from the report's shapes
(``muslcheck.model.codec``). A dataclass is a positional list. A tuple of dataclasses (files, findings: nearly
all of a payload) is stored by column, and a tuple-valued column as per-row counts plus the items flattened, so
decoding runs in C: each column's types are checked with set(map(type, column)), then map(cls, *columns) builds
the objects. Strings in columns are indices into one table of distinct strings, so "blocked" or "GLIBC_2.2.5" is
decoded once and shared. Not ``Report.to_json``: that form takes several times longer to decode. The JSON text is
orjson's (the json module's, escaped, when a name is not UTF-8); a table is encoded one field at a time.
"""

from __future__ import annotations

import base64
import binascii
import gc
import hashlib
import json
import operator
import typing
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from itertools import chain, count, filterfalse, islice, repeat
from typing import Any, cast

import orjson

try:  # zlib's format at ISA-L's speed: level 1 compresses 5x faster than zlib's, inflates 1.4x
    from isal import isal_zlib as deflate_module
except ImportError:  # pragma: no cover - depends on the platform
    import zlib as deflate_module  # type: ignore[no-redef]

from muslcheck.cache.interface import CacheStore
from muslcheck.model.codec import Bytes, Fixed, Items, Maybe, Member, Plain, Record, Shape, StrMapping, StrSet, shape_of
from muslcheck.model.kept import JudgedState
from muslcheck.model.report import Report

CODEC_VERSION = 1  # bump when an encoding changes (it is part of default_salt, and of every payload)

_MAX_JSON = 1 << 30  # the decompressed size bound: a payload is checksummed, but never trusted to be small
_INFLATE_ERROR = cast(type[Exception], deflate_module.error)
_FAST_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, check_circular=False, allow_nan=False)
_Index = dict[str | None, int]  # string -> its position in the table being built; None -> -1
_Encode = Callable[[Any, _Index], Any]
_Decode = Callable[[Any, list[Any]], Any]  # (JSON value, string table + [None]) -> value
_ColumnEncode = Callable[[Sequence[Any], _Index], Any]
_ColumnDecode = Callable[[Any, list[Any], int], list[Any]]  # (JSON column, table, row count) -> values
_INT = frozenset({int})
_STR: frozenset[type] = frozenset({str})
_OPTIONAL_STR: frozenset[type] = frozenset({str, type(None)})


class _CorruptPayload(ValueError):
    """A payload that does not decode to a value of the expected shape."""


def encode_report(report: Report) -> bytes:
    return _encode(Report, report)


def decode_report(payload: bytes) -> Report:
    """The inverse of ``encode_report``, every value checked; raises ``_CorruptPayload`` for anything else."""
    report: Report = _decode(Report, payload)
    return report


def load_report(store: CacheStore, key: str) -> Report | None:
    """A cached report for ``key``, or None (a missing, corrupt or undecodable entry; removed)."""
    payload = store.get(key)
    if payload is None:
        return None
    try:
        return decode_report(payload)
    except _CorruptPayload:
        store.discard(key)
        return None


def save_report(store: CacheStore, key: str, report: Report) -> bool:
    return store.put(key, encode_report(report))


def load_judged(store: CacheStore, key: str) -> JudgedState | None:
    """The judging a scan kept for ``key`` (``judging.reuse``), or None (missing, corrupt: removed)."""
    payload = store.get(key)
    if payload is None:
        return None
    digest = hashlib.blake2b(payload, digest_size=32).digest()
    if (state := _kept_here.get(digest)) is not None:
        _kept_here.move_to_end(digest)
        return state
    try:
        decoded: JudgedState = _decode(JudgedState, payload)
    except _CorruptPayload:
        store.discard(key)
        return None
    _keep_here(digest, decoded)
    return decoded


def save_judged(store: CacheStore, key: str, state: JudgedState) -> bool:
    payload = _encode(JudgedState, state)
    saved = store.put(key, payload)
    if saved:
        _keep_here(hashlib.blake2b(payload, digest_size=32).digest(), state)
    return saved


# The judging this process kept last, by its payload's hash (a state is frozen): the next image of a fleet on the
# same base, scanned by the same worker, finds the state it saved without decoding it (0.2-0.3 s a benchmark image).
_KEPT_HERE = 2
_kept_here: OrderedDict[bytes, JudgedState] = OrderedDict()


def _keep_here(digest: bytes, state: JudgedState) -> None:
    _kept_here[digest] = state
    _kept_here.move_to_end(digest)
    while len(_kept_here) > _KEPT_HERE:
        _kept_here.popitem(last=False)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a payload's objects are made: they hold no cycle, and its passes
    over the tens of thousands of objects a decode makes took 40% of the decode."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _encode(cls: type, value: Any) -> bytes:
    index: _Index = {None: -1}
    with _collector_paused():
        row = _codec_of(cls)[0](value, index)
    document = [CODEC_VERSION, _shape_digest(cls), list(index)[1:], row]
    try:
        text = orjson.dumps(document)  # a tenth of the json module's time
    except TypeError:  # a name that is not UTF-8 (surrogateescape): the json module writes it escaped
        text = _FAST_JSON.encode(document).encode("ascii")
    return deflate_module.compress(text, 1)


def _decode(cls: type, payload: bytes) -> Any:
    with _collector_paused():
        return _decode_document(cls, payload)


def _decode_document(cls: type, payload: bytes) -> Any:
    try:
        inflater = deflate_module.decompressobj()
        text = inflater.decompress(payload, _MAX_JSON)
        _corrupt_unless(inflater.eof and not inflater.unconsumed_tail and not inflater.unused_data,
                        "truncated, too large, or trailing data")
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:  # an escaped surrogate (see _encode), or not JSON: the json module decides
            document = json.loads(text)
        version, digest, strings, row = document
        _corrupt_unless(version == CODEC_VERSION and digest == _shape_digest(cls),
                        f"another codec or {cls.__name__} shape")
        _corrupt_unless(type(strings) is list and _types_within(strings, _STR), "bad string table")
        return _codec_of(cls)[1](row, [*strings, None])
    except _CorruptPayload:
        raise
    except (_INFLATE_ERROR, ValueError, TypeError, RecursionError) as e:  # zlib, JSON, UTF-8, arity, enum value
        raise _CorruptPayload(f"not a {cls.__name__} payload: {type(e).__name__}: {e}") from None


@cache
def _shape_digest(cls: type) -> str:
    """A digest of the field names and types of ``cls``, recursively: a payload of another shape is refused."""
    def describe(shape: Shape) -> str:
        if isinstance(shape, Record):
            return f"{shape.cls.__name__}({','.join(f'{name}:{describe(field)}' for name, field in shape.fields)})"
        if isinstance(shape, Member):
            optional = "?" if shape.optional else ""
            return f"{shape.enum.__name__}{optional}[{'|'.join(str(m.value) for m in shape.enum)}]"
        if isinstance(shape, Items):
            return f"tuple[{describe(shape.item)}]"
        if isinstance(shape, StrMapping):
            return f"dict[{describe(shape.values)}]"
        if isinstance(shape, Maybe):
            return f"{describe(shape.value)}?"
        if isinstance(shape, Fixed):
            return f"fixed[{','.join(map(describe, shape.items))}]"
        if isinstance(shape, Bytes | StrSet):
            return type(shape).__name__
        return "|".join(sorted(t.__name__ for t in shape.types))

    return hashlib.sha256(describe(shape_of(cls)).encode()).hexdigest()[:16]


@cache
def _codec_of(cls: type) -> tuple[_Encode, _Decode]:
    return _codec(shape_of(cls))


def _corrupt_unless(ok: bool, what: str) -> None:
    if not ok:
        raise _CorruptPayload(what)


def _types_within(values: Any, allowed: frozenset[type]) -> bool:
    return set(map(type, values)) <= allowed


def _codec(shape: Shape) -> tuple[_Encode, _Decode]:
    """(encode, decode) of one value: the fields of a single object (not the hot path)."""
    if isinstance(shape, Record):
        return _row_codec(shape)
    if isinstance(shape, Bytes | StrSet | Fixed | Maybe):
        return _other_codec(shape)
    if isinstance(shape, Plain):
        allowed = shape.types

        def decode_plain(value: Any, table: list[Any]) -> Any:
            _corrupt_unless(type(value) in allowed, f"expected {_names(allowed)}, got {type(value).__name__}")
            return value
        return (lambda value, index: value), decode_plain
    if isinstance(shape, Member):
        members = _members(shape)

        def decode_member(value: Any, table: list[Any]) -> Any:
            _corrupt_unless(value in members and (value is None or type(value) is str),
                            f"expected a {shape.enum.__name__} value")
            return members[value]
        return (lambda value, index: None if value is None else value.value), decode_member
    if isinstance(shape, StrMapping):
        values = shape.values.types

        def decode_mapping(value: Any, table: list[Any]) -> Any:
            _corrupt_unless(type(value) is dict and _types_within(value.values(), values), "bad mapping")
            return value
        return (lambda value, index: dict(value)), decode_mapping
    if isinstance(shape.item, Record):
        return _table_codec(shape.item)
    encode_items, decode_items = _items_codec(shape.item)
    return encode_items, (lambda value, table: tuple(decode_items(value, table)))


def _other_codec(shape: Bytes | StrSet | Fixed | Maybe) -> tuple[_Encode, _Decode]:
    """The kinds JSON has no form of: bytes as base64, a set of strings as a sorted list, a fixed tuple as a list,
    an optional value as null or the value."""
    if isinstance(shape, Bytes):
        def decode_bytes(value: Any, table: list[Any]) -> Any:
            _corrupt_unless(type(value) is str, "expected base64 text")
            try:
                return base64.b64decode(value, validate=True)
            except binascii.Error as e:
                raise _CorruptPayload(f"bad base64: {e}") from None
        return (lambda value, index: base64.b64encode(value).decode("ascii")), decode_bytes
    if isinstance(shape, StrSet):
        def decode_set(value: Any, table: list[Any]) -> Any:
            _corrupt_unless(type(value) is list and _types_within(value, _STR), "expected a list of strings")
            return frozenset(value)
        return (lambda value, index: sorted(value)), decode_set
    if isinstance(shape, Fixed):
        allowed = [item.types for item in shape.items]

        def decode_fixed(value: Any, table: list[Any]) -> Any:
            _corrupt_unless(type(value) is list and len(value) == len(allowed)
                            and all(type(v) in a for v, a in zip(value, allowed, strict=True)),
                            f"expected a list of {len(allowed)} items")
            return tuple(value)
        return (lambda value, index: list(value)), decode_fixed
    encode_value, decode_value = _codec(shape.value)

    def decode_maybe(value: Any, table: list[Any]) -> Any:
        return None if value is None else decode_value(value, table)
    return (lambda value, index: None if value is None else encode_value(value, index)), decode_maybe


def _items_codec(item: Shape) -> tuple[_Encode, _Decode]:
    """The items of a ``tuple[X, ...]`` (decoded to a list: the caller makes the tuple): X plain in one check of the
    whole list, any other X (a tuple, bytes, a dataclass as a row) one item at a time."""
    if isinstance(item, Plain):
        return _flat_codec(item)
    encode_item, decode_item = _codec(item)

    def encode(items: Any, index: _Index) -> Any:
        return [encode_item(value, index) for value in items]

    def decode(items: Any, table: list[Any]) -> Any:
        _corrupt_unless(type(items) is list, "bad item list")
        return [decode_item(value, table) for value in items]

    return encode, decode


def _row_codec(record: Record) -> tuple[_Encode, _Decode]:
    """One object as a positional list."""
    cls, names = record.cls, [name for name, _ in record.fields]
    codecs = [_codec(field) for _, field in record.fields]

    def encode(value: Any, index: _Index) -> Any:
        return [enc(getattr(value, name), index) for (enc, _), name in zip(codecs, names, strict=True)]

    def decode(row: Any, table: list[Any]) -> Any:
        _corrupt_unless(type(row) is list and len(row) == len(names), f"expected a {cls.__name__} row")
        return cls(*[dec(item, table) for (_, dec), item in zip(codecs, row, strict=True)])

    return encode, decode


def _flat_codec(item: Shape) -> tuple[_Encode, _Decode]:
    """The items of a ``tuple[X, ...]``, X plain, as a list (decoded to a list: the caller makes the tuple)."""
    if not isinstance(item, Plain):
        raise TypeError(f"the cache codec does not handle tuples of {item}")
    allowed = item.types

    def decode(items: Any, table: list[Any]) -> Any:
        _corrupt_unless(type(items) is list and _types_within(items, allowed), "bad item list")
        return items

    return (lambda items, index: list(items)), decode


def _table_codec(record: Record) -> tuple[_Encode, _Decode]:
    """``tuple[cls, ...]`` as [row count, column, column, ...]."""
    cls, names = record.cls, [name for name, _ in record.fields]
    columns = [(*_column_codec(field), operator.attrgetter(name)) for name, field in record.fields]

    def encode(value: Any, index: _Index) -> Any:
        # one pass per field (attrgetter in C): 2.5 times faster than transposing rows with zip(*rows)
        return [len(value), *(enc(list(map(field_of, value)), index) for enc, _, field_of in columns)]

    def decode(value: Any, table: list[Any]) -> Any:
        _corrupt_unless(type(value) is list and len(value) == len(names) + 1, f"expected {cls.__name__} columns")
        rows = value[0]
        _corrupt_unless(type(rows) is int and rows >= 0, "bad row count")
        decoded = [dec(column, table, rows) for (_, dec, _), column in zip(columns, value[1:], strict=True)]
        return tuple(map(cls, *decoded))

    return encode, decode


def _column_codec(shape: Shape) -> tuple[_ColumnEncode, _ColumnDecode]:
    """One field of a tuple of dataclasses, for all rows at once: the hot path of decoding."""
    if isinstance(shape, Plain) and shape.types in (_STR, _OPTIONAL_STR):
        return _string_column(optional=type(None) in shape.types)
    if isinstance(shape, Plain):
        allowed = shape.types

        def decode_plain(column: Any, table: list[Any], rows: int) -> list[Any]:
            _corrupt_unless(_is_column(column, rows) and _types_within(column, allowed), "bad plain column")
            return typing.cast(list[Any], column)
        return (lambda column, index: list(column)), decode_plain
    if isinstance(shape, Member):
        members = _members(shape)

        values: frozenset[type] = _OPTIONAL_STR if shape.optional else _STR

        def decode_member(column: Any, table: list[Any], rows: int) -> list[Any]:
            _corrupt_unless(_is_column(column, rows) and _types_within(column, values),
                            f"bad {shape.enum.__name__} column")
            found = [members.get(v, _UNKNOWN) for v in column]
            _corrupt_unless(_UNKNOWN not in found, f"unknown {shape.enum.__name__} value")
            return found
        value_of = operator.attrgetter("_value_")  # not Enum.value, a Python-level property
        if shape.optional:
            return (lambda column, index: [None if v is None else value_of(v) for v in column]), decode_member
        return (lambda column, index: list(map(value_of, column))), decode_member
    if isinstance(shape, StrMapping):
        values = shape.values.types

        def decode_mapping(column: Any, table: list[Any], rows: int) -> list[Any]:
            _corrupt_unless(_is_column(column, rows) and _types_within(column, frozenset({dict})), "bad mapping column")
            _corrupt_unless(_types_within(chain.from_iterable(map(dict.values, column)), values), "bad mapping value")
            return typing.cast(list[Any], column)
        return (lambda column, index: list(map(dict, column))), decode_mapping
    if isinstance(shape, Items):
        return _nested_column(shape.item)
    return _row_by_row(shape)


def _row_by_row(shape: Record | Bytes | StrSet | Fixed | Maybe) -> tuple[_ColumnEncode, _ColumnDecode]:
    """A column of values that are not columns themselves (a dataclass per row, bytes, sets): each row on its own."""
    encode_value, decode_value = _codec(shape)

    def encode(column: Sequence[Any], index: _Index) -> Any:
        return [encode_value(value, index) for value in column]

    def decode(column: Any, table: list[Any], rows: int) -> list[Any]:
        _corrupt_unless(_is_column(column, rows), "bad column")
        return [decode_value(value, table) for value in column]

    return encode, decode


def _is_column(column: Any, rows: int) -> bool:
    return type(column) is list and len(column) == rows


_UNKNOWN = object()


def _members(shape: Member) -> dict[Any, Any]:
    """Each value to its member; ``None`` to ``None`` when the field is optional."""
    members: dict[Any, Any] = {m.value: m for m in shape.enum}
    if shape.optional:
        members[None] = None
    return members


def _names(allowed: frozenset[type]) -> str:
    return " | ".join(sorted(t.__name__ for t in allowed))


def _string_column(optional: bool) -> tuple[_ColumnEncode, _ColumnDecode]:
    lowest = -1 if optional else 0  # -1: None (the table's last element)

    def encode(column: Sequence[Any], index: _Index) -> Any:
        new = list(filterfalse(index.__contains__, dict.fromkeys(column)))  # in first-seen order
        index.update(zip(new, count(len(index) - 1)))
        return list(map(index.__getitem__, column))

    def decode(column: Any, table: list[Any], rows: int) -> list[Any]:
        _corrupt_unless(_is_column(column, rows), "bad string column")
        if column:
            _corrupt_unless(_types_within(column, _INT), "bad string index type")
            _corrupt_unless(min(column) >= lowest and max(column) < len(table) - 1, "string index out of range")
        return list(map(table.__getitem__, column))

    return encode, decode


def _nested_column(item: Shape) -> tuple[_ColumnEncode, _ColumnDecode]:
    """A ``tuple[item, ...]`` field of every row: per-row counts, then all items (by column for dataclasses)."""
    encode_items, decode_items = _table_codec(item) if isinstance(item, Record) else _items_codec(item)

    def encode(column: Sequence[Any], index: _Index) -> Any:
        return [list(map(len, column)), encode_items(tuple(chain.from_iterable(column)), index)]

    def decode(column: Any, table: list[Any], rows: int) -> list[Any]:
        _corrupt_unless(type(column) is list and len(column) == 2, "bad nested column")
        counts, items = column[0], decode_items(column[1], table)
        _corrupt_unless(_is_column(counts, rows), "bad nested counts")
        if counts:
            _corrupt_unless(_types_within(counts, _INT) and min(counts) >= 0 and sum(counts) == len(items),
                            "bad nested counts")
        rest = iter(items)
        return list(map(tuple, map(islice, repeat(rest), counts)))  # in C: no Python frame per row

    return encode, decode
