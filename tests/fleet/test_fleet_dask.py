"""A fleet on a real Dask cluster: a LocalCluster with two worker processes, a cache directory they share, and
Debian's docker-registry on 127.0.0.1 serving several images built here on one common base layer. Each
target's part of the fleet report must equal that image's own scan."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from dask.distributed import Client, LocalCluster

from muslcheck import ScanOptions, scan
from muslcheck.cli import EXIT_INCOMPATIBLE, main
from muslcheck.fleet import CacheSpec, FleetOptions, scan_fleet, work_order
from muslcheck.fleet.report import summarize
from tests.fleet.fleet_support import layer, library, program
from tests.images import imagebuild

BASE = {  # the common base: a libc-only tool and a glibc-only library that blocks every image built on it
    "/usr/bin/basetool": program(uses=("memcpy",)),
    "/usr/lib/libbase.so": library("libbase.so", uses=("__base_glibc_only",)),
}
APPS = {
    "svc-a": {"/app/liba.so": library("liba.so", needed=("libc.so", "libgone.so.1"))},
    "svc-b": {"/app/libb.so": library("libb.so", needed=("libc.so", "libgone.so.1"), uses=("no_such_fn",))},
    "svc-c": {"/app/bin/c": program(uses=("printf",))},
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as local, Client(local, set_as_default=False) as client:
        # Not this process's default client: a fleet must find its own (as the CLI does, in a fresh process).
        client.wait_for_workers(2, timeout=60)
        yield local.scheduler_address


@dataclass(frozen=True)
class Served:
    references: list[str]
    log: Path  # the registry's access log: one line per request
    base: str  # the base layer blob's digest

    def base_fetches(self, since: int) -> int:
        """How many times the base blob was fetched, in the log past byte ``since``."""
        return self.log.read_bytes()[since:].count(f"/blobs/{self.base} HTTP/1.1\" 200".encode())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """registry: the three services, each the base layer plus its own layer."""
    imagebuild.require_tools("docker-registry", "skopeo")
    work = tmp_path_factory.mktemp("fleet-registry")
    with imagebuild.registry(work / "registry") as reg:
        references, bases = [], set()
        for name, files in APPS.items():
            layout = work / name
            built = imagebuild.write_oci_dir(layout, [layer(BASE), layer(files)], tag="1")
            bases.add(built.layers[0].digest)
            references.append(f"registry:{reg.push(f'oci:{layout}:1', f'{name}:1')}")
        (base,) = bases
        yield Served(references, reg.log, base)


@pytest.fixture(scope="module")
def pushed(served: Served) -> list[str]:
    return served.references


OPTIONS = ScanOptions(musl="1.2.5", insecure_registry=True)


def test_a_dask_fleet_equals_each_image_scan(cluster: str, served: Served, tmp_path: Path) -> None:
    pushed = served.references
    cache = CacheSpec(str(tmp_path / "shared-cache"), 1 << 26)
    since = served.log.stat().st_size
    fleet = scan_fleet(pushed, OPTIONS, FleetOptions(dask=cluster, cache=cache, keep_reports=True))
    assert served.base_fetches(since) == 1  # two workers, three images on one base: the base is read once
    assert [t.target for t in fleet.targets] == pushed
    for target, result in zip(pushed, fleet.targets, strict=True):
        alone = scan(target, OPTIONS)
        assert result.report == alone
        assert result == summarize(target, alone)
    # The base's blocker is shared by all three images; the app layers' own by the ones that have them.
    ranked = [(b.subject, b.count) for b in fleet.blockers]
    assert ranked[0] == ("__base_glibc_only", 3)
    assert ("libgone.so.1", 2) in ranked
    # libb's no_such_fn waits on the missing libgone.so.1: it is that library's blocker, never one of its own.
    assert all(subject != "no_such_fn" for subject, _ in ranked)
    # Both workers wrote to the one cache directory; a second fleet is served from it, report for report.
    entries = [p for p in (tmp_path / "shared-cache").rglob("*") if p.is_file() and len(p.name) == 62]
    # the reports, the facts of the base and of each app layer, and the judging kept for images on that base
    assert len(entries) == len(pushed) + 1 + len(pushed) + 1
    again = scan_fleet(pushed, OPTIONS, FleetOptions(dask=cluster, cache=cache))
    assert again == fleet
    # The same fleet in this one process: the same report.
    assert scan_fleet(pushed, OPTIONS, FleetOptions(jobs=1)) == fleet


@pytest.mark.parametrize("jobs", [1, 3])
def test_a_local_fleet_reads_a_shared_base_once(served: Served, tmp_path: Path, jobs: int) -> None:
    """Three worker processes, three images on one base: the first scan reads it, the others wait for its facts."""
    cache = CacheSpec(str(tmp_path / "cache"), 1 << 26)
    since = served.log.stat().st_size
    fleet = scan_fleet(served.references, OPTIONS, FleetOptions(jobs=jobs, cache=cache, keep_reports=True))
    assert served.base_fetches(since) == 1
    assert [t.report for t in fleet.targets] == [scan(target, OPTIONS) for target in served.references]
    since = served.log.stat().st_size
    scan_fleet(served.references, OPTIONS, FleetOptions(jobs=jobs))  # no cache: each scan reads it
    assert served.base_fetches(since) == 3


def test_images_sharing_a_base_run_back_to_back(pushed: list[str], tmp_path: Path) -> None:
    other = tmp_path / "other"
    imagebuild.write_oci_dir(other, [layer({"/x/libz.so": library("libz.so")})], tag="1")
    mixed = [pushed[0], f"oci-dir:{other}:1", pushed[1], str(tmp_path), pushed[2]]
    order = work_order(mixed, OPTIONS)
    positions = sorted(order.index(i) for i in (0, 2, 4))
    assert positions == list(range(positions[0], positions[0] + 3))  # the three on one base are neighbours
    assert order[0] == 3  # a directory has no layers: first, in its place


def test_cli_dask_flag_writes_the_fleet_report(cluster: str, pushed: list[str], tmp_path: Path) -> None:
    listing = tmp_path / "targets.txt"
    listing.write_text("\n".join([*pushed, "registry:127.0.0.1:1/nothing:1"]) + "\n")
    args = ["scan", "--musl", "1.2.5", "--insecure-registry", "--targets", str(listing), "-o", "json", "-q",
            "--cache", str(tmp_path / "cli-cache")]
    on_dask = CliRunner(catch_exceptions=False).invoke(main, [*args, "--dask", cluster])
    local = CliRunner(catch_exceptions=False).invoke(main, [*args, "-j", "2"])
    assert on_dask.exit_code == local.exit_code == EXIT_INCOMPATIBLE, on_dask.output
    assert json.loads(on_dask.stdout) == json.loads(local.stdout)
    failed = json.loads(on_dask.stdout)["targets"][-1]
    assert failed["verdict"] is None and failed["error_kind"] == "input"
