"""What a simulated load returns: the objects in load order and every error, as typed values.

musl's own wording (its ``%m``) is produced here once, by ``describe``, for display; verdicts read the types.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from muslcheck.elf import ElfFacts
from muslcheck.model.options import Context
from muslcheck.model.report import Effect as Effect  # the report's word; decided here (relocs.py)


class MissingReason(StrEnum):
    """Why a library was not loaded. The values are the text shown for it: musl's %m (strerror), or the model's
    own words where musl has none."""

    NOT_FOUND = "No such file or directory"  # ENOENT: no candidate in any directory searched
    EXEC_FORMAT = "Exec format error"  # ENOEXEC: map_library rejects the file (DL:865)
    IS_DIRECTORY = "Is a directory"  # EISDIR
    NOT_REGULAR = "not a regular file"  # a FIFO or device: the model never opens it
    INVALID_NAME = "Invalid argument"  # EINVAL: an empty name (DL:1067)
    UNREADABLE = "I/O error"  # any other open or read error: its own text is kept beside it
    REPLACED = "replaced on Alpine"  # a file of the OS packages the Alpine base image replaces


def describe(reason: MissingReason, error: str = "", owner: str = "") -> str:
    """The text shown for ``reason``: ``error`` is the system's text for UNREADABLE, ``owner`` the OS package
    for REPLACED."""
    if reason is MissingReason.REPLACED:
        return f"{reason.value}: owned by {owner}"
    if reason is MissingReason.UNREADABLE and error:
        return error
    return reason.value


@dataclass(frozen=True, slots=True)
class MissingLibrary:
    name: str
    needed_by: str  # the requesting object's name, or "dlopen"
    reason: MissingReason
    error: str = ""  # UNREADABLE: the system's text ("Permission denied")
    owner: str = ""  # REPLACED: the OS package that owns the file

    @property
    def message(self) -> str:
        return describe(self.reason, self.error, self.owner)


@dataclass(frozen=True, slots=True)
class UnresolvedSymbol:
    name: str
    version: str | None
    version_library: str | None
    weak: bool
    relocations: tuple[str, ...]  # relocation type names that failed to bind
    effect: Effect
    # Fatal only because the object's constructor calls it during a lazy dlopen, through a slot left unrelocated.
    called_at_init: bool = False


@dataclass(frozen=True, slots=True)
class TlsError:
    symbol: str | None  # None for a relocation against the object's own TLS
    definer: str


@dataclass(frozen=True, slots=True)
class LoadedObject:
    path: str  # the name the loader gave it: the searched path, or the ldso name for libc
    identity: object  # the inode (or a virtual key): what the scan matches files by
    requested_as: str  # the DT_NEEDED / preload / dlopen name that brought it in
    found_by: str  # how the search found it ("rpath of /app/bin/x", "default path", "libc", ...)
    links: tuple[str, ...]  # symbolic links followed to reach the file
    is_libc: bool
    facts: ElfFacts | None  # None for musl's libc and gcompat (tables, not files)
    runtime_loaded: bool
    unresolved: tuple[UnresolvedSymbol, ...] = ()
    unsupported_relocations: tuple[tuple[int, int], ...] = ()  # (type, count)
    tls_errors: tuple[TlsError, ...] = ()
    lfs64_remapped: tuple[str, ...] = ()  # NAME64 bound to NAME by the loader's remap
    wrong_arch: str | None = None  # the machine, when it is not the target's


@dataclass(frozen=True, slots=True)
class LoadResult:
    context: Context
    ldso_name: str
    objects: tuple[LoadedObject, ...]  # load order (also the global symbol order)
    missing: tuple[MissingLibrary, ...]
    relr_unsupported: tuple[str, ...]  # objects with DT_RELR on a musl that ignores it
