"""dlopen a library inside a process run by a given musl loader (samples/harness/dlopen_probe.c).

This executes the library's constructors: use it only on muslcheck's own samples and pinned packages of
Debian's archive.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from tests.oracle.sandbox import run_loader


@dataclass(frozen=True)
class DlopenResult:
    ok: bool
    error: str | None  # dlerror() text, or "killed by SIGSEGV" and the like
    returncode: int
    output: str


def run_dlopen(loader: Path, harness: Path, lib: Path, mode: str, *,
               rtld_global: bool = False, path_file: str | None = "",
               env_library_path: str | None = None, arch: str = "x86_64",
               runner: tuple[str, ...] = (), timeout: float = 60) -> DlopenResult:
    """dlopen ``lib`` (lazy or now) from ``harness`` run by ``loader``; ``arch`` is musl's name of the
    architecture (ld-musl-ARCH.so.1) and ``runner`` what runs a foreign loader (qemu-user)."""
    if mode not in ("lazy", "now"):
        raise ValueError(f"mode must be lazy or now, not {mode!r}")
    args = [str(harness), mode, *(["global"] if rtld_global else []), str(Path(lib).absolute())]
    rc, out = run_loader(loader, args, path_file=path_file, env_library_path=env_library_path, arch=arch,
                         runner=runner, timeout=timeout)
    last = out.strip().splitlines()[-1] if out.strip() else ""
    if rc == 0 and last == "OK":
        return DlopenResult(True, None, rc, out)
    if last.startswith("ERR "):
        return DlopenResult(False, last[4:], rc, out)
    why = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}: {out.strip()}"
    return DlopenResult(False, why, rc, out)
