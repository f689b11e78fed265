"""Run a musl loader with a controlled ``ld-musl-$ARCH.path``: the differential-test trap (DESIGN §2).

musl reads its path file from two directories above the name it believes it has:
- in ``--list`` mode of a program with PT_INTERP, that name is the program's interpreter
  (``/lib/ld-musl-…`` or ``/lib64/ld-linux-…``), so the file is the host's ``/etc/ld-musl-$ARCH.path``;
- otherwise it is ``argv[0]`` of the loader.

So every run happens in a private mount namespace with a tmpfs over ``/etc``, and the loader is
invoked through a symlink ``<tmp>/lib/ld-musl-$ARCH.so.1``; both ``/etc`` and ``<tmp>/etc`` hold
the same path file, or none.

``path_file``:
- ``None``: no file, so musl falls back to ``/lib:/usr/local/lib:/usr/lib`` (host directories!);
- ``""`` (the default): an empty file, which musl reads as an empty search path: no system
  directory is searched at all, so only LD_LIBRARY_PATH and rpath/runpath find libraries;
- any other text: exactly that path list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SCRIPT = """
mount -t tmpfs muslcheck-oracle /etc || exit 125
if [ "$1" = 1 ]; then printf %s "$2" > "/etc/ld-musl-$3.path" || exit 125; fi
shift 3
exec "$@"
"""
# The loader is run with this environment only: no host LD_PRELOAD or LD_LIBRARY_PATH leaks in.
ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


class SandboxUnavailable(RuntimeError):
    """The private mount namespace cannot be created here."""


def sandbox_problem() -> str | None:
    """Why sandboxed runs are impossible on this machine, or None."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    proc = subprocess.run([*_unshare(), "sh", "-c", SCRIPT, "sh", "0", "", "x", "true"],
                          capture_output=True, text=True, env=ENV)
    if proc.returncode:
        return f"cannot mount a tmpfs over /etc in a private mount namespace: {proc.stderr.strip()}"
    return None


def _unshare() -> list[str]:
    # Root needs only a mount namespace; anyone else also needs a user namespace to mount.
    return ["unshare", "-m", "--propagation", "private", *(() if os.geteuid() == 0 else ("-r",))]


def run_loader(loader: Path, args: list[str], *, path_file: str | None = "",
               env_library_path: str | None = None, arch: str = "x86_64",
               runner: tuple[str, ...] = (), timeout: float = 60) -> tuple[int, str]:
    """Run ``loader [--library-path P] ARGS`` sandboxed; return (exit status, stdout+stderr).

    ``arch`` is musl's name in ``ld-musl-ARCH.so.1``; ``runner`` runs a foreign loader
    (``("qemu-aarch64-static",)``): qemu-user gives it the symlink as argv[0], as the kernel would.

    A negative status is the signal that killed the loader's process.
    """
    with tempfile.TemporaryDirectory(prefix="muslcheck-oracle-") as tmp:
        link = Path(tmp, "lib", f"ld-musl-{arch}.so.1")
        link.parent.mkdir()
        link.symlink_to(Path(loader).resolve())
        if path_file is not None:
            Path(tmp, "etc").mkdir()
            Path(tmp, "etc", f"ld-musl-{arch}.path").write_text(path_file)
        lib_path = ["--library-path", env_library_path] if env_library_path is not None else []
        argv = [*_unshare(), "sh", "-c", SCRIPT, "sh", "0" if path_file is None else "1", path_file or "",
                arch, *runner, str(link), *lib_path, *args]
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", env=ENV, timeout=timeout)
    if proc.returncode == 125:
        raise SandboxUnavailable(proc.stdout.strip())
    return proc.returncode, proc.stdout
