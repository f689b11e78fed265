"""Fleets: many targets in one run, locally or on a Dask cluster, as one report (docs/fleet.md).

    from muslcheck.fleet import scan_fleet, FleetOptions
    fleet = scan_fleet(["registry:ghcr.io/org/a:1", "registry:ghcr.io/org/b:1"], ScanOptions(alpine="3.20"),
                       FleetOptions(jobs=0, dask="tcp://scheduler:8786"))
    for blocker in fleet.blockers:        # ranked by how many targets each blocks
        print(blocker.count, blocker.rule, blocker.subject, blocker.targets)
"""

from muslcheck.fleet.render import FLEET_FORMATS, FleetRenderer, fleet_renderer_for, summary_line
from muslcheck.fleet.report import FLEET_SCHEMA_VERSION, FleetReport, SharedBlocker, TargetBlocker, TargetResult
from muslcheck.fleet.run import FleetOptions, LayerClaims, local_workers, read_targets_file, scan_fleet, work_order
from muslcheck.fleet.work import CacheSpec

__all__ = [
    "FLEET_FORMATS",
    "FLEET_SCHEMA_VERSION",
    "CacheSpec",
    "FleetOptions",
    "FleetRenderer",
    "FleetReport",
    "LayerClaims",
    "SharedBlocker",
    "TargetBlocker",
    "TargetResult",
    "fleet_renderer_for",
    "local_workers",
    "read_targets_file",
    "scan_fleet",
    "summary_line",
    "work_order",
]
