"""``ScanOptions``: one frozen value for every scan, the keyword form still working, and a cache key that covers
every field not marked as run-only."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from muslcheck import Context, ScanOptions, UsageError, scan
from muslcheck.cache import Store
from muslcheck.model.ignore import load_ignores
from muslcheck.scan import _report_key
from muslcheck.targets.reference import parse_reference

# A value unlike the default for each field that is part of the key. A new field makes the completeness test fail
# until it is listed here, and the key covers it with no other change.
CHANGED = {
    "alpine": "3.19",
    "musl": "1.2.4",
    "arch": "aarch64",
    "platform": "linux/arm64",
    "gcompat": True,
    "context": Context.DLOPEN_LAZY,
    "library_path": "/opt/lib",
    "preload": ("/lib/libx.so",),
    "base": "oci-dir:/base",
    "include_os_packages": True,
    "include_runtimes": True,
    "ignore": Path("/accepted.toml"),
}


@pytest.fixture(autouse=True)
def later(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache's clock a minute on: a just-made tree is keyed (within 2 s of a change it never is)."""
    now = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: now() + 60 * 10**9)


def settled(directory: Path) -> Path:
    """A directory with one file, both dated a minute back."""
    directory.mkdir(exist_ok=True)
    (directory / "f").write_bytes(b"x")
    for path in (directory / "f", directory):
        os.utime(path, (time.time() - 60, time.time() - 60))
    return directory


def key_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(ScanOptions) if f.metadata.get("key", True)}


def test_every_field_of_the_key_is_exercised() -> None:
    assert key_fields() == set(CHANGED)


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_each_key_field_changes_the_key(tmp_path: Path, name: str) -> None:
    ref = parse_reference(str(settled(tmp_path)))
    plain = _report_key(ref, None, str(tmp_path), ScanOptions())
    changed = _report_key(ref, None, str(tmp_path), ScanOptions(**{name: CHANGED[name]}))
    assert plain is not None and changed is not None
    assert plain != changed


def test_run_only_fields_leave_the_key_alone(tmp_path: Path) -> None:
    ref = parse_reference(str(settled(tmp_path)))
    run_only = {"insecure_registry": True, "docker_config": Path("/cfg.json"), "jobs": 4}
    assert set(run_only) <= {f.name for f in dataclasses.fields(ScanOptions)} - key_fields()
    assert _report_key(ref, None, str(tmp_path), ScanOptions()) == _report_key(
        ref, None, str(tmp_path), ScanOptions(**run_only))


def test_an_ignore_file_keys_by_its_content_not_its_name(tmp_path: Path) -> None:
    settled(tmp_path / "root")
    accepted = tmp_path / "a.toml"
    accepted.write_text('[[ignore]]\nsymbol = "x"\nreason = "r"\n')
    ref = parse_reference(str(tmp_path / "root"))
    first = _report_key(ref, None, "t", ScanOptions(ignore=load_ignores(accepted)))
    accepted.write_text('[[ignore]]\nsymbol = "y"\nreason = "r"\n')
    assert _report_key(ref, None, "t", ScanOptions(ignore=load_ignores(accepted))) != first


def test_a_field_without_a_key_form_is_an_error(tmp_path: Path) -> None:
    settled(tmp_path)
    odd = ScanOptions(library_path=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no cache-key form"):
        _report_key(parse_reference(str(tmp_path)), None, "t", odd)


def test_loose_forms_are_normalised() -> None:
    options = ScanOptions(context="dlopen-now", preload=["/a.so"], ignore="x.toml",  # type: ignore[arg-type]
                          docker_config="c.json")  # type: ignore[arg-type]
    assert options.context is Context.DLOPEN_NOW
    assert options.preload == ("/a.so",)
    assert options.ignore == Path("x.toml") and options.docker_config == Path("c.json")
    with pytest.raises(UsageError, match="unknown context 'sideways'"):
        ScanOptions(context="sideways")  # type: ignore[arg-type]


def test_options_and_keywords_give_the_same_report(samples_dir: Path) -> None:
    by_options = scan(samples_dir, ScanOptions(musl="1.2.3", gcompat=True))
    by_keywords = scan(samples_dir, musl="1.2.3", gcompat=True)
    overridden = scan(samples_dir, ScanOptions(musl="1.2.5", gcompat=True), musl="1.2.3")
    assert by_options.to_json_bytes() == by_keywords.to_json_bytes() == overridden.to_json_bytes()
    assert by_options.target.musl == "1.2.3" and by_options.target.gcompat


def test_an_unknown_option_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        scan(tmp_path, colour=True)


def test_a_new_option_value_is_never_a_stale_cache_hit(samples_dir: Path, tmp_path: Path) -> None:
    with Store(tmp_path / "cache", salt="t") as store:
        native = scan(samples_dir, ScanOptions(cache=store))
        with_gcompat = scan(samples_dir, ScanOptions(cache=store, gcompat=True))
        again = scan(samples_dir, ScanOptions(cache=store, gcompat=True))
    assert not native.target.gcompat and with_gcompat.target.gcompat
    assert again.to_json_bytes() == with_gcompat.to_json_bytes()
