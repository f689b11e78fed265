"""A file's host comes from what it is: real Node addons, moved where no package and no name says Node, are
Node's by their symbols (an exported napi_register_module_v1, or a constructor's napi_module_register). Only files
whose string table holds one of the hosts' marks (``registry.module_marks``) have their symbols read for that."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from muslcheck.apps.application import identify
from muslcheck.apps.model import Host
from muslcheck.apps.registry import detectors, module_marks
from muslcheck.elf import ElfFacts, is_elf, read_elf_file
from muslcheck.ldso.facts import FactsCache
from muslcheck.ldso.tree import Resolved
from muslcheck.model.errors import MalformedElf
from muslcheck.targets.directory import DirectoryRoot, discover
from tests.apps.pinned import npm_pinned
from tests.elf.elfbuilder import ElfSpec, Sym

ADDONS = {  # npm package -> (its addon, how it registers with Node)
    "@lmdb/lmdb-linux-x64@3.5.6": "node.napi.glibc.node",  # exports napi_register_module_v1
    "@parcel/watcher-linux-x64-glibc@2.4.1": "watcher.node",  # its constructor calls napi_module_register
}


class CountingRoot(DirectoryRoot):
    """A directory root that notes which files had their symbols read."""

    def __init__(self, host_root: Path) -> None:
        super().__init__(host_root)
        self.read_in_full: list[str] = []

    def read_facts(self, resolved: Resolved) -> ElfFacts:
        self.read_in_full.append(resolved.path)
        return super().read_facts(resolved)


def identified(root: Path, *, marked: bool) -> tuple[dict[str, Host | None], list[str]]:
    """Each file's host, and the files read in full to find them (``marked``: discovery noted the hosts' marks)."""
    tree = CountingRoot(root)
    cache = FactsCache(tree)
    found = discover(tree, cache, marks=module_marks() if marked else None)
    app = identify(tree, cache, found.files, found.archives, None)
    return {f.path: app.host_of(f.path) for f in found.files}, sorted(tree.read_in_full)


def hosts_of(root: Path) -> dict[str, Host | None]:
    """The hosts as a scan finds them, checked against the hosts found by reading every candidate in full."""
    hosts, _ = identified(root, marked=True)
    assert hosts == identified(root, marked=False)[0]
    return hosts


def exporting(*names: str, imported: tuple[str, ...] = ()) -> bytes:
    symbols = [Sym(n, shndx=5, value=0x100 + i) for i, n in enumerate(names)] + [Sym(n) for n in imported]
    return ElfSpec(symbols=symbols).build().data


def test_only_files_whose_strings_hold_a_mark_are_read_and_the_hosts_are_those_of_a_full_read(tmp_path: Path) -> None:
    libs = tmp_path / "opt" / "lib"
    libs.mkdir(parents=True)
    files = {
        "libext.so": (exporting("PyInit_ext"), Host.PYTHON),
        "libpython3.so": (exporting("PyInit_posix", "Py_Initialize"), None),  # the interpreter: no module
        "libjni.so": (exporting("Java_org_Foo_bar"), Host.JVM),
        "libonload.so": (exporting("JNI_OnLoad_foo"), Host.JVM),
        "libnapi.so": (exporting("napi_register_module_v1"), Host.NODE),
        "libold.so": (exporting("init", imported=("node_module_register",)), Host.NODE),
        "libnotpy.so": (exporting("notPyInit_x"), None),  # the mark, though no name starts with it: read, no host
        "libplain.so": (exporting("plain", imported=("malloc",)), None),
    }
    for name, (data, _) in files.items():
        (libs / name).write_bytes(data)

    hosts, read = identified(tmp_path, marked=True)
    assert hosts == {f"/opt/lib/{name}": host for name, (_, host) in files.items()}
    assert hosts == identified(tmp_path, marked=False)[0]
    assert read == sorted(f"/opt/lib/{name}" for name in files if name != "libplain.so")


@pytest.mark.system
def test_every_module_the_full_read_finds_holds_its_hosts_mark() -> None:
    """The prefilter is sound on real files: whatever a host's ``module`` accepts after the full read, the header
    read's marks let through; and every mark found in a symbol's name is among the marks."""
    processes = [d.host for d in detectors() if d.host is not None]
    marks = module_marks()
    checked = 0
    for directory in ("/usr/lib", "/usr/lib64", "/usr/local/lib", "/opt"):
        for where, _, names in os.walk(directory):
            for name in names:
                path = os.path.join(where, name)
                try:
                    if os.path.islink(path) or not os.path.isfile(path):
                        continue
                    with open(path, "rb") as f:
                        if not is_elf(f.read(4)):
                            continue
                    header = read_elf_file(path, symbols=False, marks=marks)
                    full = read_elf_file(path, constructors=False)
                except (OSError, MalformedElf):
                    continue
                checked += 1
                assert header.dynstr_marks is not None
                named = {*full.exports.names, *full.uses.names}
                assert {m for m in marks if any(m in n for n in named)} <= header.dynstr_marks, path
                for p in processes:
                    assert not p.module(full) or p.may_be_module(header), (path, p.host)
    assert checked > 100


@pytest.mark.network
@pytest.mark.parametrize("spec", sorted(ADDONS))
def test_a_node_addon_is_nodes_wherever_it_lives(spec: str, tmp_path: Path) -> None:
    addon = npm_pinned(spec) / ADDONS[spec]
    (tmp_path / "opt" / "app" / "native").mkdir(parents=True)
    shutil.copyfile(addon, tmp_path / "opt" / "app" / "native" / "libaddon.so")
    assert hosts_of(tmp_path) == {"/opt/app/native/libaddon.so": Host.NODE}


@pytest.mark.system
def test_the_interpreter_library_is_no_module(tmp_path: Path) -> None:
    """libpython exports its built-in modules' PyInit_* too; as Py_Initialize's definer it is the interpreter, which
    no CPython imports: nothing needs it here, and it still gets no host."""
    found = sorted(p for p in Path("/usr/lib").glob("*/libpython3.*.so.1.0") if not p.is_symlink())
    if not found:
        pytest.skip("this machine has no libpython3.X.so.1.0 in /usr/lib/<triplet>")
    (tmp_path / "opt" / "lib").mkdir(parents=True)
    shutil.copyfile(found[0], tmp_path / "opt" / "lib" / found[0].name)
    assert hosts_of(tmp_path) == {f"/opt/lib/{found[0].name}": None}
