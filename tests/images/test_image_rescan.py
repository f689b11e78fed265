"""An image on the bottom layer of one scanned before (the same image rebuilt with a new top layer, or another
image of a fleet on the same base) reuses that scan's judging for what its other layers did not change, as a
directory rescan does (issue 17): the tree's manifest names each path by the layer content that provides it. The
report equals an uncached scan's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from muslcheck import scan
from muslcheck.cache import Store, default_salt
from muslcheck.judging import judge
from tests.images.imagebuild import Entry, file, sample_layers, write_oci_archive, write_oci_dir


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """One report store for the test's scans (layer records, kept judging, reports)."""
    opened = Store(tmp_path / "cache", salt=default_salt())
    yield opened
    opened.close()


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every load the judging makes from now on (a reused record is not one)."""
    made: list[str] = []
    real = judge.load

    def counting(root: Any, cache: Any, target: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        made.append(path)
        return real(root, cache, target, path, *args, **kwargs)

    monkeypatch.setattr(judge, "load", counting)
    return made


def _layers(samples: Path) -> tuple[list[list[Entry]], list[Entry]]:
    base = sample_layers(samples)
    top = [file("/app/new/bin/hello-musl", source=samples / "hello-musl/app/bin/hello")]
    return base, top


@pytest.mark.parametrize("writer", [write_oci_dir, write_oci_archive])
def test_a_rebuilt_image_judges_only_what_its_new_layer_changed(samples_dir: Path, tmp_path: Path, store: Store,
                                                                loads: list[str], writer: Any) -> None:
    base, top = _layers(samples_dir)
    image = tmp_path / "image"
    reference = f"{'oci-dir' if writer is write_oci_dir else 'oci-archive'}:{image}"
    writer(image, [*base, [file("/app/new/bin/hello-musl", source=samples_dir / "hello/app/bin/hello")]])
    first = scan(reference, cache=store)
    first_loads = len(loads)
    loads.clear()
    writer(image, [*base, top])  # rebuilt: the same base, another top layer
    uncached = scan(reference).to_json_bytes()
    loads.clear()
    rescanned = scan(reference, cache=store)
    assert rescanned.to_json_bytes() == uncached
    assert rescanned.to_json_bytes() != first.to_json_bytes()
    assert loads and set(loads) <= {"/app/new/bin/hello-musl"}, loads  # only the changed file's loads
    assert first_loads > 2 * len(loads)


def test_another_image_on_the_same_base_judges_only_its_own_layers(samples_dir: Path, tmp_path: Path,
                                                                    store: Store, loads: list[str]) -> None:
    base, top = _layers(samples_dir)
    write_oci_dir(tmp_path / "a", [*base, [file("/srv/a/bin/hello", source=samples_dir / "hello/app/bin/hello")]])
    write_oci_dir(tmp_path / "b", [*base, top])
    scan(f"oci-dir:{tmp_path / 'a'}", cache=store)
    loads.clear()
    b = scan(f"oci-dir:{tmp_path / 'b'}", cache=store)
    reused_loads = list(loads)
    assert b.to_json_bytes() == scan(f"oci-dir:{tmp_path / 'b'}").to_json_bytes()
    assert b.source == f"oci-dir:{tmp_path / 'b'}"
    assert reused_loads and set(reused_loads) <= {"/app/new/bin/hello-musl"}, reused_loads
    assert len(loads) > 3 * len(reused_loads)  # the uncached scan's loads follow


def test_other_options_reuse_nothing(samples_dir: Path, tmp_path: Path, store: Store, loads: list[str]) -> None:
    base, top = _layers(samples_dir)
    write_oci_dir(tmp_path / "a", [*base, top])
    scan(f"oci-dir:{tmp_path / 'a'}", cache=store)
    loads.clear()
    gcompat = scan(f"oci-dir:{tmp_path / 'a'}", cache=store, gcompat=True)
    assert loads
    assert gcompat.to_json_bytes() == scan(f"oci-dir:{tmp_path / 'a'}", gcompat=True).to_json_bytes()
