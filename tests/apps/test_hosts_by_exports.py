"""A file's host comes from what it is: real Node addons, moved where no package and no name says Node, are
Node's by their symbols (an exported napi_register_module_v1, or a constructor's napi_module_register)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from muslcheck.apps.application import identify
from muslcheck.apps.model import Host
from muslcheck.ldso.facts import FactsCache
from muslcheck.targets.directory import DirectoryRoot, discover
from tests.apps.pinned import npm_pinned

ADDONS = {  # npm package -> (its addon, how it registers with Node)
    "@lmdb/lmdb-linux-x64@3.5.6": "node.napi.glibc.node",  # exports napi_register_module_v1
    "@parcel/watcher-linux-x64-glibc@2.4.1": "watcher.node",  # its constructor calls napi_module_register
}


def hosts_of(root: Path) -> dict[str, Host | None]:
    tree = DirectoryRoot(root)
    cache = FactsCache(tree)
    found = discover(tree, cache)
    app = identify(tree, cache, found.files, found.archives, None)
    return {f.path: app.host_of(f.path) for f in found.files}


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
