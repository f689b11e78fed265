"""Which musl an Alpine release means: the cited table, ``edge`` for the newest table, and releases whose musl
version no source confirms yet, which are refused with a way out rather than guessed."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from muslcheck import UsageError
from muslcheck.cli import main
from muslcheck.ldso.tables import Catalog, version_key


def test_edge_is_the_newest_musl_with_a_table() -> None:
    catalog = Catalog()
    edge = catalog.alpine_release("edge")
    assert edge.musl == max(catalog.musl_versions, key=version_key)
    assert version_key(edge.musl) >= version_key(catalog.newest_alpine().musl)


def test_an_unverified_release_is_refused_with_a_way_out() -> None:
    catalog = Catalog()
    assert catalog.unverified_alpine, "the table lists no unverified release: drop this test's premise"
    release = next(iter(catalog.unverified_alpine))
    with pytest.raises(UsageError, match=f"Alpine {release} is known, but its musl version is not verified") as e:
        catalog.alpine_release(release)
    assert "--musl" in str(e.value) and "\n" not in str(e.value)
    assert release not in {r.alpine for r in catalog.alpine_releases}  # never the default


def test_versions_lists_edge_and_the_unverified() -> None:
    result = CliRunner().invoke(main, ["versions"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert any(line.startswith("alpine edge ") for line in lines)
    for release in Catalog().unverified_alpine:
        assert any(line.startswith(f"alpine {release} ") and "not mapped" in line for line in lines)


def test_scan_accepts_edge(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "README").write_text("no ELF here")
    result = CliRunner().invoke(main, ["scan", str(tmp_path), "--alpine", "edge", "-o", "json", "--no-cache"])
    assert result.exit_code == 0, result.output
    assert f'"musl":"{Catalog().alpine_release("edge").musl}"' in result.output
