"""registry: against a tiny distribution-API stub on 127.0.0.1 (Bearer and Basic auth, redirects, errors)."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
import urllib.error
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from muslcheck.targets.image.sources import DigestMismatch, SourceError, open_image, parse_reference
from muslcheck.targets.image.sources.registry import (
    Credentials,
    RegistryClient,
    RegistrySource,
    load_credentials,
    parse_challenge,
)
from muslcheck.targets.reference import DOCKER_HUB
from tests.sources.sources_support import Blobs, layer_tar, sha

USER, PASSWORD = "reader", "s3cr3t-pa55"
APP = {"app/run": b"\x7fELF app"}


class Stub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.auth = "none"  # "none", "bearer" (anonymous tokens), "bearer-login" (tokens need Basic), "basic"
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.tokens: set[str] = set()
        self.log: list[tuple[str, str | None]] = []
        self.lying_digest_header = False

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def publish(self, repo: str, tag: str, blobs: Blobs, top: dict[str, Any]) -> None:
        for digest, data in blobs.data.items():
            self.blobs[digest] = data
            if b'"schemaVersion"' in data:
                media_type = json.loads(data).get("mediaType", "application/json")
                self.manifests[(repo, digest)] = (data, media_type)
        self.manifests[(repo, tag)] = (blobs.data[top["digest"]], top["mediaType"])


class Handler(BaseHTTPRequestHandler):
    server: Stub

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def reply(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def basic_ok(self) -> bool:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return self.headers.get("Authorization") == expected

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        auth = self.headers.get("Authorization")
        self.server.log.append((url.path, auth))
        if url.path == "/token":
            if self.server.auth == "bearer-login" and not self.basic_ok():
                return self.reply(401, b'{"errors": []}')
            scope = parse_qs(url.query).get("scope", [""])[0]
            token = f"tok-{len(self.server.tokens)}-{scope}"
            self.server.tokens.add(token)
            return self.reply(200, json.dumps({"token": token}).encode(), {"Content-Type": "application/json"})
        if url.path.startswith("/storage/"):
            if auth:
                return self.reply(400, b"two auth mechanisms")  # what S3 says to a forwarded Authorization
            return self.reply(200, self.server.blobs[url.path.split("/")[-1]])
        parts = url.path.split("/")
        if parts[:2] != ["", "v2"] or len(parts) < 5:
            return self.reply(404)
        repo, kind, ref = "/".join(parts[2:-2]), parts[-2], parts[-1]
        if repo == "ratelimited":
            return self.reply(429, b'{"errors": [{"code": "TOOMANYREQUESTS"}]}')
        if repo == "slow":
            time.sleep(1.5)
        if self.server.auth.startswith("bearer") and (auth or "").removeprefix("Bearer ") not in self.server.tokens:
            realm = f"http://{self.server.host}/token"
            return self.reply(401, b"{}", {"WWW-Authenticate":
                                           f'Bearer realm="{realm}",service="stub",scope="repository:{repo}:pull"'})
        if self.server.auth == "basic" and not self.basic_ok():
            return self.reply(401, b"{}", {"WWW-Authenticate": 'Basic realm="stub"'})
        if kind == "manifests" and (repo, ref) in self.server.manifests:
            data, media_type = self.server.manifests[(repo, ref)]
            digest = sha(b"lie") if self.server.lying_digest_header else sha(data)
            return self.reply(200, data, {"Content-Type": media_type, "Docker-Content-Digest": digest})
        if kind == "blobs" and ref in self.server.blobs:
            return self.reply(307, b"", {"Location": f"/storage/{ref}"})
        return self.reply(404, b'{"errors": [{"code": "MANIFEST_UNKNOWN"}]}')


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = Stub()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def published(stub: Stub) -> Blobs:
    blobs = Blobs()
    amd = blobs.image([{"etc/os-release": b"ID=debian\n"}, APP], compress=True)
    arm = blobs.image([APP], arch="arm64", variant="v8")
    index = blobs.index([amd.descriptor, arm.descriptor])
    stub.publish("team/app", "1", blobs, index)
    single = Blobs()
    stub.publish("single", "latest", single, single.image([APP], platform_in_descriptor=False).descriptor)
    return blobs


def docker_config(tmp_path: Path, host: str, entry: dict[str, str]) -> Path:
    (tmp_path / "config.json").write_text(json.dumps({"auths": {host: entry}}))
    return tmp_path


def pull(stub: Stub, name: str, **kw: Any) -> Any:
    return open_image(parse_reference(f"registry:{stub.host}/{name}"), insecure_registry=True, **kw)


def test_anonymous_pull_with_platform_and_redirected_blobs(stub: Stub, published: Blobs) -> None:
    with pull(stub, "team/app:1", platform="linux/arm64") as image:
        assert image.kind == "registry" and image.config.platform == "linux/arm64/v8"
        (layer,) = image.layers
        with image.blobs.open_blob(layer.digest) as f:
            assert f.read() == layer_tar(APP)
    with pull(stub, "team/app:1") as image:
        assert image.config.platform == "linux/amd64"
        assert len(image.layers) == 2
    with pull(stub, "single") as image:  # default tag, a manifest with no index
        assert image.config.architecture == "amd64"
    assert any(path.startswith("/storage/") for path, _ in stub.log)


def test_pull_by_digest(stub: Stub, published: Blobs) -> None:
    digest = sha(stub.manifests[("team/app", "1")][0])
    with pull(stub, f"team/app@{digest}") as image:
        assert image.config.platform == "linux/amd64"
    with pytest.raises(SourceError, match=r"not found"):
        pull(stub, "team/app@sha256:" + "0" * 64).__enter__()


def test_bearer_challenge_anonymous_token(stub: Stub, published: Blobs) -> None:
    stub.auth = "bearer"
    with pull(stub, "team/app:1") as image, image.blobs.open_blob(image.layers[1].digest) as f:
        assert f.read()
    tokens = [p for p, _ in stub.log if p == "/token"]
    assert tokens and len(tokens) <= 2  # one token, reused (one more at most if the stub re-challenges)
    # The storage redirect never received the Authorization header (the stub would have answered 400).
    assert all(auth is None for path, auth in stub.log if path.startswith("/storage/"))


def test_bearer_needing_login(stub: Stub, published: Blobs, tmp_path: Path) -> None:
    stub.auth = "bearer-login"
    with pytest.raises(SourceError) as e:
        pull(stub, "team/app:1", docker_config=tmp_path / "none").__enter__()
    assert "authentication required for" in str(e.value)
    assert "log in with docker login or pass credentials" in str(e.value)
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    config = docker_config(tmp_path, stub.host, {"auth": auth})
    with pull(stub, "team/app:1", docker_config=config) as image:
        assert len(image.layers) == 2
    wrong = base64.b64encode(f"{USER}:wrong".encode()).decode()
    config = docker_config(tmp_path, f"https://{stub.host}/v1/", {"auth": wrong})
    with pytest.raises(SourceError, match=r"authentication failed for") as e:
        pull(stub, "team/app:1", docker_config=config).__enter__()
    assert "wrong" not in str(e.value) and wrong not in str(e.value)


def test_basic_auth(stub: Stub, published: Blobs, tmp_path: Path) -> None:
    stub.auth = "basic"
    with pytest.raises(SourceError, match=r"authentication required for"):
        pull(stub, "team/app:1", docker_config=tmp_path).__enter__()
    config = docker_config(tmp_path, stub.host, {"username": USER, "password": PASSWORD})
    with pull(stub, "team/app:1", docker_config=config / "config.json") as image, \
            image.blobs.open_blob(image.layers[0].digest) as f:
        assert f.read()
    config = docker_config(tmp_path, stub.host, {"username": USER, "password": "nope"})
    with pytest.raises(SourceError, match=r"authentication failed for") as e:
        pull(stub, "team/app:1", docker_config=config).__enter__()
    assert PASSWORD not in str(e.value) and "nope" not in str(e.value)


def test_not_found_and_rate_limited(stub: Stub, published: Blobs) -> None:
    with pytest.raises(SourceError, match=rf"^{stub.host}/team/app:2 not found$"):
        pull(stub, "team/app:2").__enter__()
    with pytest.raises(SourceError, match=rf"^rate limited by {stub.host}: retry later or authenticate$"):
        pull(stub, "ratelimited:1").__enter__()


def test_missing_blob(stub: Stub, published: Blobs) -> None:
    with pull(stub, "team/app:1") as image, pytest.raises(SourceError, match=r"blob sha256:0+ of .* not found"):
        image.blobs.open_blob("sha256:" + "0" * 64).__enter__()


def test_digest_mismatch(stub: Stub, published: Blobs) -> None:
    stub.lying_digest_header = True
    with pytest.raises(DigestMismatch):
        pull(stub, "team/app:1").__enter__()
    stub.lying_digest_header = False
    amd_digest = json.loads(stub.manifests[("team/app", "1")][0])["manifests"][0]["digest"]
    data, media_type = stub.manifests[("team/app", amd_digest)]
    stub.manifests[("team/app", amd_digest)] = (data.replace(b'"layers"', b'"Layers"'), media_type)
    with pytest.raises(DigestMismatch, match=amd_digest):
        pull(stub, "team/app:1").__enter__()


def test_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceError, match=rf"^registry 127.0.0.1:{port} is unreachable: "):
        open_image(parse_reference(f"registry:127.0.0.1:{port}/app"), insecure_registry=True).__enter__()


def test_dns_failure_message() -> None:
    client = RegistryClient("nowhere.invalid", "app")
    error = client._network_error(urllib.error.URLError(socket.gaierror(-2, "Name or service not known")))
    assert str(error) == "registry nowhere.invalid is unreachable: Name or service not known"


def test_https_to_a_plain_http_registry_hints_insecure(stub: Stub, published: Blobs) -> None:
    with pytest.raises(SourceError, match=r"TLS failed.*pass --insecure-registry"):
        open_image(parse_reference(f"registry:{stub.host}/team/app:1")).__enter__()


def test_insecure_applies_to_loopback_only() -> None:
    assert RegistryClient("localhost:5000", "app", insecure=True).scheme == "http"
    assert RegistryClient("example.com", "app", insecure=True).scheme == "https"
    assert RegistryClient(DOCKER_HUB, "library/alpine").url("manifests/3") == \
        "https://registry-1.docker.io/v2/library/alpine/manifests/3"


def test_timeout(stub: Stub, published: Blobs) -> None:
    source = RegistrySource(f"{stub.host}/slow", tag="1", insecure=True, timeout=0.3)
    with pytest.raises(SourceError, match=r"did not answer within 0.3 s"):
        source.open().__enter__()


def test_credentials_from_docker_config(tmp_path: Path) -> None:
    hub = base64.b64encode(b"hubuser:hubpass").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": hub},
        "ghcr.io": {"username": "gh", "password": "token"},
        "quay.io": {}}, "credsStore": "desktop"}))
    creds, helpers = load_credentials(tmp_path / "config.json", DOCKER_HUB)
    assert creds == Credentials("hubuser", "hubpass") and helpers
    assert load_credentials(tmp_path / "config.json", "ghcr.io")[0] == Credentials("gh", "token")
    assert load_credentials(tmp_path / "config.json", "quay.io")[0] is None
    assert load_credentials(tmp_path / "missing.json", "quay.io") == (None, False)
    assert "hubpass" not in repr(creds) and "hubpass" not in str(creds)
    (tmp_path / "config.json").write_text('{"auths": {"x": {"auth": "' + PASSWORD)
    with pytest.raises(SourceError) as e:
        load_credentials(tmp_path / "config.json", "x")
    assert PASSWORD not in str(e.value)


def test_parse_challenge() -> None:
    scheme, params = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                                     'scope="repository:library/alpine:pull,push"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                      "scope": "repository:library/alpine:pull,push"}
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})
