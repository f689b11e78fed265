"""Images from a local Docker daemon (``docker:NAME[:TAG]``), exported with ``docker save``.

The export goes to a private temporary directory that is removed when the image is closed, and is then
read as a docker-archive. Without a reachable daemon the error says how to do the same by hand.
"""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from muslcheck.targets.image.sources.archive import DockerArchiveSource
from muslcheck.targets.image.sources.interface import Image, SourceError, part_of
from muslcheck.targets.reference import Reference, ReferenceKind

PROBE_TIMEOUT = 10.0
SAVE_TIMEOUT = 3600.0


def daemon_reachable(docker: str = "docker", timeout: float = PROBE_TIMEOUT) -> bool:
    try:
        proc = subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0 and bool(proc.stdout.strip())


def no_daemon_message(spec: str) -> str:
    return (f"no Docker daemon is reachable; run `docker save {spec} -o image.tar` "
            "and scan docker-archive:image.tar")


class DockerDaemonSource:
    kind = ReferenceKind.DOCKER

    def __init__(self, spec: str, *, platform: str | None = None, reference: str | None = None,
                 docker: str = "docker") -> None:
        if not spec or spec.startswith("-"):
            raise SourceError(f"{self.kind}:{spec}: not an image name")
        self.spec, self.platform, self.docker = spec, platform, docker
        self.reference = reference or f"{self.kind}:{spec}"

    @classmethod
    def from_reference(cls, ref: Reference, *, platform: str | None, insecure_registry: bool = False,
                       docker_config: Path | None = None) -> DockerDaemonSource:
        return cls(part_of(ref, ref.spec, "image"), platform=platform, reference=ref.text)

    @contextmanager
    def open(self) -> Iterator[Image]:
        if not daemon_reachable(self.docker):
            raise SourceError(no_daemon_message(self.spec))
        with tempfile.TemporaryDirectory(prefix="muslcheck-docker-") as tmp:
            out = Path(tmp) / "image.tar"
            try:
                proc = subprocess.run([self.docker, "save", "-o", str(out), self.spec], capture_output=True,
                                      text=True, timeout=SAVE_TIMEOUT, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise SourceError(f"docker save {self.spec} did not finish within {SAVE_TIMEOUT:g} s") from None
            except OSError as e:
                raise SourceError(f"cannot run docker: {e.strerror}") from None
            if proc.returncode != 0:
                lines = [line for line in proc.stderr.splitlines() if line.strip()]
                detail = lines[-1].strip() if lines else f"exit status {proc.returncode}"
                raise SourceError(f"docker save {self.spec} failed: {detail}")
            source = DockerArchiveSource(out, platform=self.platform, reference=self.reference)
            with source.open() as image:
                yield dataclasses.replace(image, kind=self.kind)
