"""A real ``dask.distributed`` LocalCluster (separate worker processes) in a process of its own, for run.py's
fleet-on-Dask case: ``muslcheck scan --dask tcp://HOST:PORT`` is then timed against it as against any existing
cluster. The cluster's process gets the environment the scans get (so its workers import the same muslcheck),
and is stopped by closing its stdin.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

# Runs in the cluster's own process: the scheduler there, each worker a process of its own.
CLUSTER = """
import sys
from dask.distributed import Client, LocalCluster

workers = int(sys.argv[1])
with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                  host="127.0.0.1") as cluster, Client(cluster) as client:
    client.wait_for_workers(workers, timeout=120)
    print(cluster.scheduler_address, flush=True)
    sys.stdin.read()
"""


def dask_installed(env: Mapping[str, str]) -> bool:
    """Whether dask.distributed (muslcheck's ``fleet`` extra) imports with ``env``."""
    probe = [sys.executable, "-c", "import dask.distributed"]
    return subprocess.run(probe, env=dict(env), capture_output=True).returncode == 0


@contextmanager
def local_cluster(env: Mapping[str, str], log: Path, workers: int = 2) -> Iterator[str]:
    """The scheduler address (``tcp://127.0.0.1:PORT``) of a LocalCluster of ``workers`` processes, one thread
    each, running while the context lasts. The cluster's own messages go to ``log``."""
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", CLUSTER, str(workers)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=dict(env),
            text=True,
        )
        assert proc.stdin is not None and proc.stdout is not None  # both are pipes
        try:
            address = proc.stdout.readline().strip()
            if not address.startswith("tcp://"):
                tail = " / ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
                raise RuntimeError(f"the LocalCluster did not start: {tail[-400:]}")
            yield address
        finally:
            proc.stdin.close()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
