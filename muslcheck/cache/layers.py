"""A layer's facts kept in the report store (``targets.image.fs.LayerRecords``): what ``read_image`` recorded of a
layer, under its digests, so that a rebuilt image, or another image on the same base, reads only its new layers.

The record goes through the report's codec (JSON only, every value checked, the decompressed size bounded); a payload
that does not decode is a miss, and removed. ``read_image`` checks that a decoded record fits before it applies any
of it. A payload larger than the store takes is not stored (``Store.put`` refuses it)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from muslcheck.cache.codec import _CorruptPayload, _decode, _encode
from muslcheck.cache.interface import CacheStore
from muslcheck.cache.keys import scan_key
from muslcheck.cache.verified import StoredVerifications
from muslcheck.elf import ElfFacts
from muslcheck.ldso.lru import Bounded
from muslcheck.targets.image.fs import LayerRecord, RecordedFile
from muslcheck.targets.image.sources.interface import SourceError

# Records decoded in this process, by their payload's hash: a fleet worker scanning image after image on one base
# decodes the base's record once (0.3-0.5 s for the benchmark tree). A record is frozen; applying it makes new nodes.
_DECODED_KEPT = 4
_decoded: OrderedDict[bytes, LayerRecord] = OrderedDict()
_full_facts: Bounded[bytes, ElfFacts] = Bounded(512)  # by their payload (bytes cache their hash)


class StoredLayers:
    """Layer records in a report store, and the blobs hashed before (``StoredVerifications``)."""

    def __init__(self, store: CacheStore) -> None:
        self.store = store
        self._verified = StoredVerifications(store)

    @property
    def verified(self) -> StoredVerifications:
        return self._verified

    def load(self, key: str, meanwhile: Callable[[], object] | None = None) -> LayerRecord | None:
        """The record under ``key``, decoded; when there is one, ``meanwhile`` (a blob's hash: its reads and SHA-256
        release the GIL) runs in a thread as it decodes, and its exception is raised."""
        stored = _key(key)
        payload = self.store.get(stored)
        if payload is None:
            return None
        if meanwhile is None:
            return self._decoded(stored, payload)
        with ThreadPoolExecutor(1, thread_name_prefix="blob-digest") as pool:
            checking = pool.submit(meanwhile)
            record = self._decoded(stored, payload)
            checking.result()
        return record

    def _decoded(self, stored: str, payload: bytes) -> LayerRecord | None:
        content = hashlib.blake2b(payload, digest_size=32).digest()
        if (record := _decoded.get(content)) is not None:
            _decoded.move_to_end(content)
            return record
        try:
            record = decode_layer(payload)
        except _CorruptPayload:
            self.store.discard(stored)
            return None
        _decoded[content] = record
        if len(_decoded) > _DECODED_KEPT:
            _decoded.popitem(last=False)
        return record

    def full_facts(self, symbols: bytes) -> ElfFacts:
        return full_facts(symbols)

    def save(self, key: str, record: LayerRecord) -> None:
        self.store.put(_key(key), encode_layer(record))


def encode_layer(record: LayerRecord) -> bytes:
    """The record, each streamed ELF file's facts in full encoded on their own (``RecordedFile.symbols``): a scan
    that reuses most of its judging decodes only the symbols of the files it judges again."""
    return _encode(LayerRecord, replace(record, files=tuple(map(_symbols_apart, record.files))))


def full_facts(symbols: bytes) -> ElfFacts:
    """A kept file's facts in full (``RecordedFile.symbols``), decoded once per process while they stay among the
    last decoded (a fleet worker's images share their base's files); ``SourceError`` when they do not decode."""
    facts = _full_facts.get(symbols)
    if facts is None:
        try:
            facts = _full_facts.put(symbols, _decode(ElfFacts, symbols))
        except _CorruptPayload as e:
            raise SourceError(f"the report cache holds a damaged layer record ({e}): scan with --no-cache, or "
                              "clear the cache") from None
    return facts


def _symbols_apart(file: RecordedFile) -> RecordedFile:
    if file.facts is None or not file.facts.symbols_read or file.member is not None or file.symbols is not None:
        return file
    return replace(file, facts=file.facts.headers(), symbols=_encode(ElfFacts, file.facts))


def decode_layer(payload: bytes) -> LayerRecord:
    """The inverse of ``encode_layer``, every value checked; a ``ValueError`` for anything else."""
    record: LayerRecord = _decode(LayerRecord, payload)
    return record


def _key(layer_key: str) -> str:
    return scan_key("layer facts", {"layer": layer_key})
