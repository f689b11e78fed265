"""No execution (issue 7, part 5): scanning a tree full of executables and scripts, and images built
from it, never spawns a process, execs, or dlopens through ctypes. The scans run through the library
(``muslcheck.scan.scan``) in a subprocess whose first act is ``sys.addaudithook``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.hostile.hostile_support import EXEC_EVENTS, REPO, SCAN_CHILD, is_own_handle, run_scan
from tests.images import imagebuild as ib

_LIBRARY_SCANS = r"""
import os, sys, json
_events = []
def _hook(event, args):
    if event.startswith(tuple(json.loads(os.environ["HOSTILE_AUDIT_EVENTS"]))):
        _events.append([event, repr(args)[:300]])
sys.addaudithook(_hook)
from muslcheck.scan import scan
verdicts = [scan(target).verdict.value for target in sys.argv[1:]]
if os.environ.get("HOSTILE_CONTROL"):
    import subprocess
    subprocess.run(["true"])
json.dump({"events": _events, "verdicts": verdicts}, sys.stdout)
"""

SCRIPTS = {
    "run.sh": "#!/bin/sh\ntouch \"$CANARY\"\n",
    "tool.py": "#!/usr/bin/env python3\nopen(__import__('os').environ['CANARY'], 'w')\n",
    "app": "#!/app/bin/hello\n",  # a shebang naming an ELF file of the tree
    "ld-linux-x86-64.so.2": "#!/bin/sh\ntouch \"$CANARY\"\n",  # a fake loader
}


def _tree(tmp_path: Path, samples_dir: Path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(samples_dir, root / "samples", symlinks=True)
    (root / "app/bin").mkdir(parents=True)
    (root / "lib64").mkdir()
    shutil.copy(samples_dir / "hello/app/bin/hello", root / "app/bin/hello")
    for name, text in SCRIPTS.items():
        p = (root / "lib64" / name) if name.startswith("ld-") else (root / "app/bin" / name)
        p.write_text(text)
        p.chmod(0o755)
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            p.chmod(0o755)
    return root


def _library_scans(tmp_path: Path, targets: list[str], control: bool = False) -> dict:
    canary = tmp_path / "canary-executed"
    env = {**os.environ, "HOSTILE_AUDIT_EVENTS": json.dumps(EXEC_EVENTS), "CANARY": str(canary),
           "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("HOSTILE_CONTROL", None)
    if control:
        env["HOSTILE_CONTROL"] = "1"
    proc = subprocess.run([sys.executable, "-c", _LIBRARY_SCANS, *targets], capture_output=True, text=True,
                          env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not canary.exists(), "a script of the input ran"
    return json.loads(proc.stdout)


def test_the_hook_sees_a_spawn(tmp_path: Path) -> None:
    """The control: the same child, told to run `true`, records subprocess.Popen."""
    out = _library_scans(tmp_path, [], control=True)
    assert any(e[0] == "subprocess.Popen" for e in out["events"]), out


def test_scanning_executables_and_scripts_runs_nothing(tmp_path: Path, samples_dir: Path) -> None:
    root = _tree(tmp_path, samples_dir)
    entries = [ib.file("/" + str(p.relative_to(root)), source=p, mode=0o755)
               for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()]
    entries += [ib.symlink("/" + str(p.relative_to(root)), os.readlink(p))
                for p in sorted(root.rglob("*")) if p.is_symlink()]
    config = ib.image_config(entrypoint=["/app/bin/run.sh"], cmd=["/app/bin/tool.py"])
    ib.write_oci_dir(tmp_path / "oci", [entries], config)
    ib.write_docker_archive_legacy(tmp_path / "docker.tar", [entries], config)
    ib.write_oci_archive(tmp_path / "oci.tar", [entries], config)
    targets = [str(root), f"dir:{root}", f"oci-dir:{tmp_path / 'oci'}", f"docker-archive:{tmp_path / 'docker.tar'}",
               f"oci-archive:{tmp_path / 'oci.tar'}", str(tmp_path / "docker.tar"),
               str(root / "app/bin/hello"), f"file:{samples_dir / 'hello/app/bin/hello'}"]
    out = _library_scans(tmp_path, targets)
    loaded = [e for e in out["events"] if not is_own_handle({"event": e[0], "args": e[1]})]
    assert loaded == [], loaded
    assert len(out["events"]) - len(loaded) <= len(targets)  # the process's own handle, at most once per scan
    assert len(out["verdicts"]) == len(targets)

    # And through the CLI, the way CI runs it.
    for target in (f"dir:{root}", f"oci-dir:{tmp_path / 'oci'}"):
        result = run_scan(target, work=tmp_path / "w", code=SCAN_CHILD)
        assert result.executed() == [], result.executed()
        assert result.written() == [], result.written()
        assert result.report["files"]
