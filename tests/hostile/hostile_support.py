"""Shared helpers for the hostile-input tests (issue 7, parts 3-5).

Every scan runs the real CLI (``python -c "from muslcheck.cli import main; main()" scan ...``) in a
child of a small *driver* process. The driver waits for the scan and reports
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``: the scan's own peak RSS, untouched by whatever
else the pytest process ran before (gcc for the samples, ...). The scan child installs an audit hook
(``sys.addaudithook``) as its first act and logs every file opened (read or write), every filesystem
change and every attempt to run something, so a test can prove that nothing outside the input was
read, nothing was written, and nothing was executed.

Not a conftest.py (see tests/images/imagebuild.py for why). Big inputs are written sparse or as
repeated gzip members so that a multi-GB image costs little disk and little build time.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.images import imagebuild

REPO = Path(__file__).resolve().parents[2]

# The documented bound (docs/hostile-input.md): peak RSS of one scan of a hostile input, excluding the
# buffer of the largest ELF member read (members above MAX_ELF_BYTES = 1 GiB are never read).
RSS_BOUND_MB = 300
HANG_GUARD_S = 120  # a scan that has not finished by then is a hang, not a slow scan

EXEC_EVENTS = ("subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system", "ctypes.dlopen",
               "os.fork", "os.forkpty", "pty.spawn")
WRITE_EVENTS = ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.symlink", "os.link", "os.chmod",
                "os.chown", "os.truncate", "os.utime", "os.mkfifo", "os.mknod", "shutil.copyfile",
                "shutil.copymode", "shutil.copystat", "shutil.move", "shutil.rmtree", "tempfile.mkstemp",
                "tempfile.mkdtemp")

def is_own_handle(event: dict[str, Any]) -> bool:
    """``ctypes.CDLL(None)``: the handle of the libraries the process already has (for glibc's ``malloc_trim``,
    judging/judge.py). It loads nothing, and nothing from the target."""
    return event["event"] == "ctypes.dlopen" and event["args"] in (["None"], "(None,)")


# The scan child: the audit hook first, then the CLI. Events go to a file opened before the hook.
_HOOK = r"""
import os, sys, json
_log = open(os.environ["HOSTILE_AUDIT_LOG"], "a", buffering=1)
_WATCH = tuple(json.loads(os.environ["HOSTILE_AUDIT_EVENTS"]))
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
def _hook(event, args):
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if isinstance(path, str):
            _log.write(json.dumps({"event": "open", "path": path, "write": bool(writes)}) + "\n")
    elif event.startswith(_WATCH):
        _log.write(json.dumps({"event": event, "args": [repr(a)[:300] for a in args]}) + "\n")
sys.addaudithook(_hook)
"""
SCAN_CHILD = _HOOK + "from muslcheck.cli import main\nmain()\n"

# The driver: run the child, then report its peak RSS (RUSAGE_CHILDREN holds only that child).
_DRIVER = r"""
import json, resource, subprocess, sys
cmd, timeout, limit = json.loads(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
def cap():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a runaway scan fails, the machine survives
try:
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, preexec_fn=cap)
    rc, out, err = p.returncode, p.stdout, p.stderr
except subprocess.TimeoutExpired as e:
    rc, out, err = None, e.stdout or b"", e.stderr or b""
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
json.dump({"rc": rc, "stdout": out.decode("utf-8", "replace"), "stderr": err.decode("utf-8", "replace"),
           "maxrss_kb": ru.ru_maxrss, "cpu_s": ru.ru_utime + ru.ru_stime}, sys.stdout)
"""


@dataclass
class ScanResult:
    rc: int | None  # None: killed by the hang guard
    stdout: str
    stderr: str
    peak_rss_mb: float
    cpu_s: float
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def report(self) -> dict[str, Any]:
        assert self.rc in (0, 1), f"scan failed (rc={self.rc}):\n{self.stderr[-3000:]}"
        report: dict[str, Any] = json.loads(self.stdout)
        return report

    @property
    def error(self) -> str:
        """The one-line error of a refused input (exit 3), with no traceback."""
        assert self.rc == 3, f"expected a clear error (exit 3), got rc={self.rc}:\n{self.stderr[-3000:]}"
        assert "Traceback" not in self.stderr, self.stderr
        assert "internal error" not in self.stderr, self.stderr
        lines = [ln for ln in self.stderr.splitlines() if ln.startswith("muslcheck: error:")]
        assert lines, self.stderr
        return lines[0]

    def opened(self) -> list[str]:
        return [e["path"] for e in self.events if e["event"] == "open"]

    def written(self) -> list[dict[str, Any]]:
        return [e for e in self.events
                if (e["event"] == "open" and e["write"] and e["path"] != os.devnull)
                or e["event"].startswith(WRITE_EVENTS)]

    def executed(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"].startswith(EXEC_EVENTS)
                and not is_own_handle({"event": e["event"], "args": e.get("args")})]

    def measured(self) -> str:
        return f"peak RSS {self.peak_rss_mb:.0f} MB, CPU {self.cpu_s:.1f} s, rc {self.rc}"


def run_scan(target: str, *args: str, work: Path, timeout: float = HANG_GUARD_S,
             memory_limit_gb: float = 6, code: str = SCAN_CHILD) -> ScanResult:
    """Scan ``target`` with the CLI (JSON on stdout) in a driver subprocess; audited, measured, time-guarded."""
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"audit-{len(list(work.glob('audit-*')))}.jsonl"
    scan_tmp = work / "scan-tmpdir"
    scan_tmp.mkdir(exist_ok=True)
    env = {**os.environ, "HOSTILE_AUDIT_LOG": str(log), "PYTHONDONTWRITEBYTECODE": "1",
           "HOSTILE_AUDIT_EVENTS": json.dumps(EXEC_EVENTS + WRITE_EVENTS), "TMPDIR": str(scan_tmp),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    env.pop("DOCKER_CONFIG", None)
    # The report cache is the one thing a scan writes (tests/test_report_cache.py): off here, so any write is a leak.
    cmd = [sys.executable, "-c", code, "scan", target, "-o", "json", "--no-gcompat", "--no-cache", *args]
    driver = subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps(cmd), str(timeout), str(int(memory_limit_gb * (1 << 30)))],
        capture_output=True, text=True, env=env, cwd=work, timeout=timeout + 60)
    assert driver.returncode == 0, driver.stderr
    out = json.loads(driver.stdout)
    events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    result = ScanResult(out["rc"], out["stdout"], out["stderr"], out["maxrss_kb"] / 1024, out["cpu_s"], events)
    assert result.rc is not None, f"hang: the scan of {target} did not end within {timeout} s ({result.measured()})"
    assert "Traceback" not in result.stderr, result.stderr
    assert list(scan_tmp.iterdir()) == [], f"the scan left files in its TMPDIR: {list(scan_tmp.iterdir())}"
    return result


def report_paths(report: dict[str, Any]) -> set[str]:
    return {f["path"] for f in report["files"]}


def skipped(report: dict[str, Any]) -> dict[str, str]:
    return {s["path"]: s["reason"] for s in report["skipped"]}


def everything_mentioned(report: dict[str, Any]) -> str:
    return json.dumps(report)


def tmp_entries() -> set[str]:
    return set(os.listdir("/tmp"))


def free_disk_gb(path: Path) -> float:
    return shutil.disk_usage(path).free / (1 << 30)


def need_disk(path: Path, gb: float) -> None:
    if free_disk_gb(path) < gb:
        pytest.skip(f"needs {gb} GB free on {path} (df says {free_disk_gb(path):.1f} GB)")


# ---- tar streams without materialising their content ---------------------------------------------

ZERO = b"\0" * (1 << 20)
ELF_HEAD = b"\x7fELF\x02\x01\x01" + b"\0" * 9  # an ELF identification; the rest is zeros


@dataclass(frozen=True)
class Big:
    """A member of ``size`` bytes: ``head`` followed by zeros (never held in memory)."""

    name: str
    size: int
    head: bytes = b""


Member = imagebuild.Entry | Big


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _big_info(m: Big) -> tarfile.TarInfo:
    info = tarfile.TarInfo(m.name.lstrip("/"))
    info.size, info.mode, info.mtime = m.size, 0o755, imagebuild.MTIME
    return info


def tar_pieces(members: Sequence[Member]) -> Iterator[bytes | int]:
    """A layer tar as pieces: bytes, or an int N meaning N zero bytes (a hole, or repeated zeros)."""
    for m in members:
        if isinstance(m, Big):
            yield _header(_big_info(m))
            yield m.head
            yield m.size - len(m.head)
            if m.size % 512:
                yield 512 - m.size % 512
        else:
            yield entry_bytes(m)
    yield 1024  # end of archive (tarfile.open("w") pads to a record; readers stop at the two zero blocks)


def entry_bytes(e: imagebuild.Entry) -> bytes:
    """One layer member (header and padded data) as ``imagebuild.layer_tar`` writes it, without end blocks."""
    buf = io.BytesIO()
    tar = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - never closed: no end blocks
    tar.addfile(*imagebuild.tar_member(e))
    return buf.getvalue()


def write_sparse(path: Path, pieces: Iterable[bytes | int]) -> tuple[str, int]:
    """Write the pieces to ``path`` with holes for the zero runs; returns (sha256 digest, size)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "wb") as f:
        for piece in pieces:
            if isinstance(piece, int):
                f.seek(piece, os.SEEK_CUR)
                _hash_zeros(h, piece)
                size += piece
            else:
                f.write(piece)
                h.update(piece)
                size += len(piece)
        f.truncate(size)
    return "sha256:" + h.hexdigest(), size


def _hash_zeros(h: Any, n: int) -> None:
    while n > 0:
        step = min(n, len(ZERO))
        h.update(ZERO[:step])
        n -= step


_GZ_ZERO_MB = 64
_gz_zero_cache: list[bytes] = []


def _gzip_member(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def write_gzip_layer(path: Path, pieces: Iterable[bytes | int]) -> tuple[str, str, int]:
    """A gzip layer blob of concatenated gzip members (zero runs reuse one precompressed member):
    returns (blob digest, diff_id, uncompressed size). A 4 GB member costs about 4 MB on disk."""
    if not _gz_zero_cache:
        _gz_zero_cache.append(_gzip_member(b"\0" * (_GZ_ZERO_MB << 20)))
    zero_member = _gz_zero_cache[0]
    blob_h, tar_h = hashlib.sha256(), hashlib.sha256()
    size = 0
    with open(path, "wb") as f:
        def put(data: bytes) -> None:
            f.write(data)
            blob_h.update(data)

        for piece in pieces:
            if isinstance(piece, int):
                whole, rest = divmod(piece, _GZ_ZERO_MB << 20)
                for _ in range(whole):
                    put(zero_member)
                if rest:
                    put(_gzip_member(b"\0" * rest))
                _hash_zeros(tar_h, piece)
                size += piece
            elif piece:
                put(_gzip_member(piece))
                tar_h.update(piece)
                size += len(piece)
    return "sha256:" + blob_h.hexdigest(), "sha256:" + tar_h.hexdigest(), size


def oci_dir_from_blobs(layout: Path, layers: Sequence[tuple[str, str, str, int]],
                       config: dict[str, Any] | None = None, *, config_size: bool = True) -> Path:
    """index.json, oci-layout, config and manifest for layer blobs already in ``layout/blobs/sha256``:
    ``layers`` is [(media type, blob digest, diff_id, blob size)]."""
    cfg = dict(config if config is not None else imagebuild.image_config())
    cfg["rootfs"] = {"type": "layers", "diff_ids": [diff_id for _, _, diff_id, _ in layers]}
    config_blob = imagebuild.dumps(cfg)
    manifest = imagebuild.dumps({
        "schemaVersion": 2, "mediaType": imagebuild.OCI_MANIFEST,
        "config": {"mediaType": imagebuild.OCI_CONFIG, "digest": imagebuild.sha256(config_blob),
                   "size": len(config_blob)},
        "layers": [{"mediaType": t, "digest": d, "size": s} for t, d, _, s in layers],
    })
    put_blob(layout, config_blob)
    put_blob(layout, manifest)
    desc = {"mediaType": imagebuild.OCI_MANIFEST, "digest": imagebuild.sha256(manifest), "size": len(manifest)}
    (layout / "index.json").write_bytes(imagebuild.dumps(
        {"schemaVersion": 2, "mediaType": imagebuild.OCI_INDEX, "manifests": [desc]}))
    (layout / "oci-layout").write_bytes(imagebuild.dumps({"imageLayoutVersion": "1.0.0"}))
    return layout


def put_blob(layout: Path, data: bytes) -> str:
    digest = imagebuild.sha256(data)
    p = imagebuild.blob_path(layout, digest)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return digest


def blob_file(layout: Path) -> Path:
    """A scratch name inside the layout's blob directory (rename it to its digest when written)."""
    d = layout / "blobs" / "sha256"
    d.mkdir(parents=True, exist_ok=True)
    return d / "incoming"


def big_layer_oci_dir(layout: Path, members: Sequence[Member], *, compression: str = "none",
                      config: dict[str, Any] | None = None) -> Path:
    """An OCI layout with one layer holding ``members`` (Big ones never materialised): uncompressed and
    sparse on disk, or gzip made of repeated members."""
    scratch = blob_file(layout)
    if compression == "none":
        digest, size = write_sparse(scratch, tar_pieces(members))
        diff_id, media = digest, imagebuild.OCI_LAYER["none"]
    else:
        digest, diff_id, _ = write_gzip_layer(scratch, tar_pieces(members))
        size, media = scratch.stat().st_size, imagebuild.OCI_LAYER["gzip"]
    scratch.rename(imagebuild.blob_path(layout, digest))
    return oci_dir_from_blobs(layout, [(media, digest, diff_id, size)], config)


def tar_members_bytes(members: Sequence[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def tinfo(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tuple[
        tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.mtime, info.linkname = kind, imagebuild.MTIME, linkname
    info.mode = 0o644 if kind == tarfile.REGTYPE else 0o777
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    return info, None
