"""The load list of one simulated process: load_library (DL:1055-1259) and load_deps (DL:1298).

Reserved names and the loader's own name are libc; a name with a slash is opened as it is; otherwise an object
already loaded under that short name, then LD_LIBRARY_PATH, the rpath of the requester and of each object up
its needed_by chain, and the path file or the default path. The same inode under another name is the object
already loaded, and another libc found by the search is replaced by musl itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from muslcheck.elf import ElfFacts, ElfType
from muslcheck.ldso.dso import NO_DEFINITIONS, Definitions, Dso, definitions
from muslcheck.ldso.facts import FactsSource, NotLoadable
from muslcheck.ldso.results import MissingLibrary, MissingReason
from muslcheck.ldso.target import Provided, Target
from muslcheck.ldso.tree import Resolved, RootFS, join, parent

NAME_MAX = 255  # a longer name is never searched (DL:1116)
# A search order longer than this looks its names up in an index of its directories' listings, made once per order:
# walking it per name costs the product of directories and names (10,000 rpath entries x 4,096 DT_NEEDED).
LONG_SEARCH = 64
_NOT_FOUND = NotLoadable(MissingReason.NOT_FOUND)
_EXEC_FORMAT = NotLoadable(MissingReason.EXEC_FORMAT)


def search_path(facts: ElfFacts, origin: str) -> str | None:
    """fixup_rpath (DL:899): RUNPATH replaces RPATH; $ORIGIN and ${ORIGIN} expand to ``origin`` (the directory
    of the object's name), and any other $ token voids it."""
    raw = facts.runpath if facts.runpath is not None else facts.rpath
    if raw is None or "$" not in raw:
        return raw
    out, rest = [], raw
    while "$" in rest:
        before, _, after = rest.partition("$")
        if after.startswith("ORIGIN"):
            after = after[6:]
        elif after.startswith("{ORIGIN}"):
            after = after[8:]
        else:
            return None
        out.append(before + origin)
        rest = after
    return "".join(out) + rest


def split_path(s: str) -> Iterable[str]:
    """path_open's walk over a search path (DL:873): ':' and newline separate, empty entries are skipped."""
    for part in s.replace("\n", ":").split(":"):
        if part:
            yield part


def _directories(search: str, how: str) -> Iterator[tuple[str, str]]:
    """(directory, ``how``) of each entry of ``search``, first occurrence only, made absolute as path_open's
    open() would see it from the root."""
    for directory in dict.fromkeys(split_path(search)):
        yield (directory if directory.startswith("/") else "/" + directory), how


def is_reserved(name: str, target: Target) -> bool:
    """A name musl takes for itself (DL:1072-1098): lib + c. pthread. rt. m. dl. util. xnet. ..."""
    return name.startswith("lib") and name.startswith(target.rules.reserved_prefixes, 3)


class Process:
    """One simulated process: its load list, in order, and the libraries it could not load."""

    def __init__(self, root: RootFS, facts: FactsSource, target: Target, ldso_name: str,
                 exports_of: Callable[[ElfFacts], Definitions] = definitions) -> None:
        self.root = root
        self.facts = facts
        self.target = target
        self.ldso_name = ldso_name
        self.exports_of = exports_of
        self.runtime = False  # set once start-up is over: what loads next comes in through dlopen
        self.objects: list[Dso] = []
        self.missing: list[MissingLibrary] = []
        self.libc = Dso(
            path=ldso_name, requested_as=ldso_name, found_by="libc", links=(), identity=("musl-libc",),
            needed_by=None, runtime_loaded=False, is_libc=True, exports=target.libc_exports,
        )
        self._sys_path: str | None = None
        # objects[1:] by short name and by identity, the first in load order for each (the walks of DL:1110, 1172)
        self._by_shortname: dict[str, Dso] = {}
        self._by_identity: dict[object, Dso] = {}
        self._position: dict[int, int] = {}  # id(dso) -> its place in objects
        self._rpath_dirs: dict[int, tuple[tuple[str, str], ...]] = {}  # id(dso) -> _inherited(dso)
        self._library_dirs = tuple(_directories(target.library_path, "LD_LIBRARY_PATH")) if target.library_path \
            else ()
        self._with_library_dirs: dict[int, tuple[object, tuple[tuple[str, str], ...]]] = {}
        self._system: tuple[tuple[str, str], ...] | None = None
        self._indexes: dict[int, tuple[object, dict[str, list[int]]]] = {}  # id(order) -> (order, its index)
        self._virtual: dict[str, list[str]] | None = None

    # -- load_library (DL:1055) -------------------------------------------------
    def load_library(self, name: str, needed_by: Dso | None) -> Dso | NotLoadable:
        """The loaded object, or why it could not be loaded."""
        if not name:
            return NotLoadable(MissingReason.INVALID_NAME)
        if is_reserved(name, self.target) or name == self.ldso_name:
            return self.add_libc()
        if "/" in name:
            return self._open(name, name, needed_by, "path given")
        if (loaded := self._by_shortname.get(name)) is not None:  # already loaded under this short name
            return loaded
        if len(name) > NAME_MAX:
            return _NOT_FOUND
        # musl's order: LD_LIBRARY_PATH, the rpaths up the needed_by chain, then the path file or the default path,
        # the last only when the others did not find the name.
        for dirs in (self._early_dirs(needed_by), None):
            if dirs is None:
                dirs = self._system_dirs()
            for directory, how in self._candidates(dirs, name):
                candidate = join(directory, name)
                located = self._locate(candidate)
                if located is not None:
                    return self._open(candidate, name, needed_by, how, located)
        return _NOT_FOUND

    def _early_dirs(self, needed_by: Dso | None) -> tuple[tuple[str, str], ...]:
        """LD_LIBRARY_PATH's directories, then the inherited rpaths: one tuple per requester's rpaths."""
        inherited = self._inherited(needed_by)
        if not self._library_dirs:
            return inherited
        memo = self._with_library_dirs.get(id(inherited))
        if memo is None:  # the inherited tuple is kept in the memo, so its id stays its own
            memo = self._with_library_dirs[id(inherited)] = (inherited, self._library_dirs + inherited)
        return memo[1]

    def _system_dirs(self) -> tuple[tuple[str, str], ...]:
        if self._system is None:
            self._system = tuple(_directories(self._system_path(), "system path"))
        return self._system

    def _candidates(self, dirs: tuple[tuple[str, str], ...], name: str) -> Iterable[tuple[str, str]]:
        """The entries of ``dirs`` where ``name`` may be: all of them for a short order; for a long one, only those
        whose directory lists the name (or provides it as a virtual file), in order."""
        if len(dirs) <= LONG_SEARCH or name in (".", ".."):  # "." and ".." are never listed, yet always open
            return dirs
        return [dirs[i] for i in self._index(dirs).get(name, ())]

    def _index(self, dirs: tuple[tuple[str, str], ...]) -> dict[str, list[int]]:
        """name -> the places in ``dirs`` of the directories that hold it, made once per order. A directory that is
        the one of an earlier place (a link to it) adds only its virtual files: its other names would resolve as
        the earlier place's did. Its size is bounded by the distinct directories' listings."""
        memo = self._indexes.get(id(dirs))
        if memo is None:
            index: dict[str, list[int]] = {}
            seen: set[object] = set()
            for i, (directory, _) in enumerate(dirs):
                names: list[str] = []
                found = self.root.resolve(directory)
                if isinstance(found, Resolved) and found.is_dir and found.identity not in seen:
                    seen.add(found.identity)
                    names = self.root.list_dir(found.path)
                for name in (*names, *self._virtual_names().get(directory.rstrip("/"), ())):
                    places = index.setdefault(name, [])
                    if not places or places[-1] != i:
                        places.append(i)
            memo = self._indexes[id(dirs)] = (dirs, index)  # dirs kept alive: its id stays its own
        return memo[1]

    def _virtual_names(self) -> dict[str, list[str]]:
        """The target's virtual files by directory (as ``join`` writes it, without a final slash)."""
        if self._virtual is None:
            self._virtual = {}
            for path in self.target.virtual_files:
                directory, _, name = path.rpartition("/")
                self._virtual.setdefault(directory, []).append(name)
        return self._virtual

    def _inherited(self, requester: Dso | None) -> tuple[tuple[str, str], ...]:
        """The rpath directories of ``requester`` and of each object up its needed_by chain (DL:1119-1123), made
        once per object. A directory already listed is left out, as it would miss again: a long chain of objects
        without an rpath, or with the same one, costs one lookup per directory, not one per object."""
        unknown: list[Dso] = []
        while requester is not None and id(requester) not in self._rpath_dirs:
            unknown.append(requester)
            requester = requester.needed_by
        dirs = self._rpath_dirs[id(requester)] if requester is not None else ()
        for p in reversed(unknown):
            rpath = self._rpath(p)
            if rpath is not None:
                kind = "RUNPATH" if p.facts and p.facts.runpath is not None else "RPATH"
                own = tuple(_directories(rpath, f"{kind} of {p.path}"))
                listed = {d for d, _ in own}
                dirs = own + tuple(entry for entry in dirs if entry[0] not in listed)
            self._rpath_dirs[id(p)] = dirs
        return dirs

    def add_libc(self) -> Dso:
        if id(self.libc) not in self._position:
            self._admit(self.libc)
        return self.libc

    def _admit(self, dso: Dso) -> None:
        """Append ``dso`` to the load list, indexed by its short name and identity."""
        self._position[id(dso)] = len(self.objects)
        self.objects.append(dso)
        if dso.shortname is not None:
            self._by_shortname.setdefault(dso.shortname, dso)
        self._by_identity.setdefault(dso.identity, dso)

    def _rpath(self, p: Dso) -> str | None:
        if p.facts is None:
            return None
        return search_path(p.facts, parent(p.path) if "/" in p.path else ".")

    def _system_path(self) -> str:
        """<prefix>/etc/ld-musl-ARCH.path, prefix two levels above the loader's name (DL:1126-1162)."""
        if self._sys_path is None:
            prefix = ""
            if self.ldso_name.startswith("/"):
                prefix = self.ldso_name[: self.ldso_name.rfind("/")]
                prefix = prefix[: prefix.rfind("/")] if "/" in prefix else ""
            arch = self.target.rules.ldso_names[self.target.arch].removeprefix("ld-musl-").removesuffix(".so.1")
            located = self.root.resolve(f"{prefix}/etc/ld-musl-{arch}.path")
            if isinstance(located, Resolved):
                try:
                    self._sys_path = self.root.read_head(located, 65536).decode("utf-8", "surrogateescape")
                except OSError:
                    self._sys_path = ""
            elif located.reason == "no such file":
                self._sys_path = self.target.rules.default_path
            else:
                self._sys_path = ""
        return self._sys_path

    def _locate(self, path: str) -> Resolved | Provided | None:
        found = self.root.resolve(path)
        if isinstance(found, Resolved):
            return found
        return self.target.virtual_files.get(path)

    def _open(
        self, path: str, name: str, needed_by: Dso | None, how: str, located: Resolved | Provided | None = None
    ) -> Dso | NotLoadable:
        if located is None:
            located = self._locate(path)
            if located is None:
                return _NOT_FOUND
        if isinstance(located, Provided):
            return self._open_provided(path, name, needed_by, how, located)
        if (seen := self._already_loaded(located.identity, path, name)) is not None:
            return seen
        if (owner := self.target.replaced.get(located.path)) is not None:
            return NotLoadable(MissingReason.REPLACED, owner=owner)
        facts = self.facts.get(located)
        if isinstance(facts, NotLoadable):
            return facts
        if facts.elf_type not in (ElfType.DYN, ElfType.EXEC) or not facts.has_dynamic:
            return _EXEC_FORMAT
        exports = self.exports_of(facts)
        if "__libc_start_main" in exports and "stdin" in exports:
            return self.load_library("libc.so", needed_by)  # another libc: musl substitutes itself (DL:1192-1196)
        dso = Dso(
            path=path, requested_as=name, found_by=how, links=located.links, identity=located.identity,
            needed_by=needed_by, runtime_loaded=self.runtime, facts=facts, exports=exports,
            shortname=name if path != name else None,
        )
        self._admit(dso)
        return dso

    def _open_provided(
        self, path: str, name: str, needed_by: Dso | None, how: str, what: Provided
    ) -> Dso | NotLoadable:
        if what is Provided.LIBC:
            return self.add_libc()
        identity = ("virtual", what.value)
        if (seen := self._already_loaded(identity, path, name)) is not None:
            return seen
        exports = self.target.gcompat_exports if what is Provided.GCOMPAT else NO_DEFINITIONS
        dso = Dso(
            path=path, requested_as=name, found_by=how, links=(), identity=identity, needed_by=needed_by,
            runtime_loaded=self.runtime, exports=exports, shortname=name if path != name else None,
        )
        self._admit(dso)
        return dso

    def _already_loaded(self, identity: object, path: str, name: str) -> Dso | None:
        """The same inode under another name is the same object; it gains a short name (DL:1172-1181)."""
        p = self._by_identity.get(identity)
        if p is None:
            return None
        if p.shortname is None and path != name:
            p.shortname = p.path.rsplit("/", 1)[-1]
            first = self._by_shortname.get(p.shortname)
            if first is None or self._position[id(p)] < self._position[id(first)]:
                self._by_shortname[p.shortname] = p  # the walk finds the earlier object first
        return p

    # -- load_deps (DL:1298): breadth-first over the load list --------------------
    def load_deps(self, start: Dso) -> None:
        i = self.objects.index(start)
        while i < len(self.objects):
            p = self.objects[i]
            i += 1
            if p.deps_loaded or p.is_libc:
                continue
            p.deps_loaded = True
            for needed in self._needed(p):
                self.require(needed, p, p.path)

    def require(self, name: str, needed_by: Dso | None, requester: str) -> Dso | None:
        """load_library, recording a failure against ``requester`` (a name, or "dlopen")."""
        found = self.load_library(name, needed_by)
        if isinstance(found, NotLoadable):
            self.missing.append(MissingLibrary(name, requester, found.cause, found.error, found.owner))
            return None
        return found

    def _needed(self, p: Dso) -> tuple[str, ...]:
        if p.facts is not None:
            return p.facts.needed
        if p.identity == ("virtual", Provided.GCOMPAT.value):
            return ("libc.musl-" + self.target.ldso_path.removeprefix("/lib/ld-musl-"),)
        return ()
