"""The ecosystem registry: what the target readers keep for the detectors, and which host each declares."""

from __future__ import annotations

import pytest

from muslcheck.apps.application import host_provides
from muslcheck.apps.model import Host
from muslcheck.apps.registry import KEEP_METADATA, Detector, anywhere, detectors, host_process, metadata_predicate
from muslcheck.model.options import Context


@pytest.mark.parametrize(("path", "kept"), [
    ("/usr/lib/python3/dist-packages/orjson-3.9.10.dist-info/RECORD", True),
    ("/usr/local/lib/python3.11/site-packages/orjson-3.9.10.dist-info/METADATA", True),
    ("orjson-3.9.10.dist-info/WHEEL", True),  # a wheel's member
    ("/usr/lib/python3/dist-packages/orjson/RECORD", False),
    ("/app/node_modules/@swc/core/package.json", True),
    ("/app/package.json", False),
    ("META-INF/maven/org.xerial/sqlite-jdbc/pom.properties", True),
    ("META-INF/MANIFEST.MF", True),
    ("BOOT-INF/MANIFEST.MF", False),
    ("MANIFEST.MF", False),
    ("/opt/java/openjdk/release", True),
    ("/usr/include/node/node_version.h", True),
    ("/usr/lib/x86_64-linux-gnu/libssl.so.3", False),
    ("/app/RECORD.txt", False),
])
def test_the_metadata_files_the_readers_keep(path: str, kept: bool) -> None:
    assert KEEP_METADATA.wanted(path) is kept
    assert KEEP_METADATA(path, KEEP_METADATA.max_bytes) is kept
    assert not KEEP_METADATA(path, KEEP_METADATA.max_bytes + 1)


def test_a_new_ecosystems_metadata_is_kept_by_declaring_it() -> None:
    """The predicate asks for the detectors on its first call: one registered after it was built counts."""
    registered: list[Detector] = []
    wanted = metadata_predicate(lambda: registered)
    registered.append(Detector("gems", 40, {"gem.build_complete": lambda path: "/extensions/" in path}))
    registered.append(Detector("other", 50, {"gem.build_complete": lambda path: path.startswith("/opt/"),
                                             "Cargo.toml": anywhere}))
    assert wanted("/usr/lib/ruby/gems/3.2.0/extensions/x86_64-linux/3.2.0/json-2.7.1/gem.build_complete")
    assert wanted("/opt/gem.build_complete")  # either detector's condition
    assert not wanted("/usr/gem.build_complete")
    assert wanted("Cargo.toml") and wanted("/src/x/Cargo.toml")
    assert not wanted("/app/package.json")  # only what these two declare


def test_each_host_is_declared_once_with_its_dlopen_flags() -> None:
    declared = [d.host.host for d in detectors() if d.host is not None]
    assert sorted(declared) == sorted(Host)
    contexts = {host: host_process(host).context for host in Host}
    assert contexts == {Host.JVM: Context.DLOPEN_LAZY, Host.PYTHON: Context.DLOPEN_NOW, Host.NODE: Context.DLOPEN_LAZY}
    assert all(host_provides(host) for host in Host)
