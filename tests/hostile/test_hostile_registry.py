"""Hostile registries (issue 18, part 10), served by threads of this process: a server that sends its response
a byte at a time, one that trickles a blob, one that redirects to plain HTTP elsewhere, and the pull's deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from muslcheck.targets.image.sources import registry
from muslcheck.targets.image.sources.interface import SourceError
from muslcheck.targets.image.sources.registry import RegistryBlobs, RegistryClient, RegistrySource

DIGEST = "sha256:" + "0" * 64


def _serve(handle: Callable[[socket.socket], None]) -> Iterator[str]:
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def loop() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_quietly, args=(handle, conn, stop), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    server.close()


def _quietly(handle: Callable[[socket.socket], None], conn: socket.socket, stop: threading.Event) -> None:
    with conn:
        try:
            conn.recv(65536)
            handle(conn)
        except OSError:
            pass


def _trickle(data: bytes, every: float) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        for i in range(len(data)):
            conn.sendall(data[i : i + 1])
            time.sleep(every)
    return handle


@pytest.fixture
def slow_headers() -> Iterator[str]:
    yield from _serve(_trickle(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 1000 + b"\r\n\r\n", 0.05))


def test_headers_sent_a_byte_at_a_time_end_in_an_error(slow_headers: str) -> None:
    """Each byte comes well within the read timeout; the watchdog cuts the response at twice the timeout."""
    source = RegistrySource(f"{slow_headers}/slow", tag="1", insecure=True, timeout=0.5)
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"did not send its response within 1 s"):
        source.open().__enter__()
    assert time.monotonic() - start < 5


@pytest.fixture
def slow_body() -> Iterator[str]:
    body = b"x" * 100_000
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)

    def handle(conn: socket.socket) -> None:
        conn.sendall(head)
        _trickle(body, 0.01)(conn)
    yield from _serve(handle)


def test_a_blob_below_the_minimum_rate_ends_in_an_error(slow_body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "MIN_RATE_GRACE", 0.5)  # 30 s in production
    client = RegistryClient(slow_body, "x/y", insecure=True, timeout=5)
    with pytest.raises(SourceError, match=r"slower than 16 KiB/s"), \
            RegistryBlobs(client, "x/y").open_blob(DIGEST) as blob:
        while blob.read(1 << 16):
            pass


def test_the_pull_deadline_ends_an_endless_blob(slow_body: str) -> None:
    client = RegistryClient(slow_body, "x/y", insecure=True, timeout=5, deadline=1.0)
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"deadline of 1 s passed"), \
            RegistryBlobs(client, "x/y").open_blob(DIGEST) as blob:
        while blob.read(1 << 16):
            pass
    assert time.monotonic() - start < 5


@pytest.fixture
def redirecting() -> Iterator[str]:
    def handle(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: http://198.51.100.7/blob\r\nContent-Length: 0\r\n\r\n")
    yield from _serve(handle)


def test_a_redirect_to_plain_http_elsewhere_is_refused(redirecting: str) -> None:
    client = RegistryClient(redirecting, "x/y", insecure=True, timeout=2)
    with pytest.raises(SourceError, match=r"refusing a redirect to http URL on 198.51.100.7"), \
            RegistryBlobs(client, "x/y").open_blob(DIGEST):
        pass
