"""Images pulled from a registry over the OCI distribution API (``registry:NAME[:TAG|@DIGEST]``).

HTTP goes through the standard library's ``urllib.request``: the flow is three kinds of GET
(manifests, blobs, a token), ``urlopen`` hands back the response as a stream (so a layer is read as the
layer reader consumes it, never buffered whole), it follows the redirects registries send for blobs,
honours the usual proxy settings, and needs no new dependency. What it lacks is written here:

- authentication: anonymous first; on 401 the ``WWW-Authenticate`` challenge says what to do: ``Bearer
  realm=...,service=...,scope=...`` (Docker Hub, GHCR, distribution with token auth) fetches a token from
  the realm, with Basic credentials when there are some; ``Basic`` sends the credentials directly;
- credentials from a Docker ``config.json`` (``auths``: ``auth`` as base64 ``user:password``, or
  ``username`` and ``password``); they are never printed, logged or put in an error message, and the
  ``Authorization`` header is never forwarded on a redirect (blob storage is another host);
- plain HTTP only for a loopback registry and only when asked (``insecure``); a redirect never downgrades
  HTTPS to HTTP;
- a timeout on every connect and read, a watchdog on each response's headers (twice the timeout: a server that
  trickles them a byte at a time), a minimum rate for a body (``MIN_RATE`` after ``MIN_RATE_GRACE``), and a
  deadline for the whole pull (``DEFAULT_DEADLINE``, settable); a redirect is followed only to HTTPS, or to plain
  HTTP on loopback when plain HTTP was allowed;
- one clear ``SourceError`` per failure (unreachable, 401, 404, 429, too slow, deadline).

Credential helpers (``credsStore``, ``credHelpers``) and identity tokens are not supported.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import io
import json
import os
import re
import socket
import ssl
import stat
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from muslcheck.model.version import __version__
from muslcheck.targets.image.sources import oci
from muslcheck.targets.image.sources.interface import BlobLocation, Image, SourceError, part_of
from muslcheck.targets.reference import DIGEST, DOCKER_HUB, Reference, ReferenceKind

DEFAULT_TIMEOUT = 30.0  # connect, and each read; and the whole of a response's headers
DEFAULT_DEADLINE = 3600.0  # every request of one image, together
MIN_RATE = 16 << 10  # bytes per second a body must average once MIN_RATE_GRACE has passed
MIN_RATE_GRACE = 30.0
MAX_TOKEN_BYTES = 1 << 20
MAX_DOCKER_CONFIG_BYTES = 4 << 20
DOCKER_HUB_API = "registry-1.docker.io"
_DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
_AUTH_HINT = "log in with docker login or pass credentials"


@dataclass(frozen=True, repr=False)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:
        return "Credentials(<hidden>)"

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")


def docker_config_file(docker_config: Path | None) -> Path:
    """``docker_config`` is a directory (as ``DOCKER_CONFIG``) or a file; None means ``~/.docker/config.json``."""
    if docker_config is None:
        return Path.home() / ".docker" / "config.json"
    return docker_config / "config.json" if docker_config.is_dir() else docker_config


def _key_host(key: str) -> str:
    if "://" in key:
        key = key.split("://", 1)[1]
    return key.split("/", 1)[0].lower()


def load_credentials(config_file: Path, host: str) -> tuple[Credentials | None, bool]:
    """The credentials for ``host`` in a Docker ``config.json``, and whether it names credential helpers."""
    try:  # never blocking (a FIFO), only a regular file; one that cannot be read means no credentials
        fd = os.open(config_file, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None, False
            data = f.read(MAX_DOCKER_CONFIG_BYTES + 1)
    except OSError:
        return None, False
    if len(data) > MAX_DOCKER_CONFIG_BYTES:
        raise SourceError(f"{config_file}: too large for a Docker config")
    try:
        doc = json.loads(data)
    except ValueError:
        raise SourceError(f"{config_file}: not valid JSON") from None  # no detail: it may quote a secret
    if not isinstance(doc, dict):
        raise SourceError(f"{config_file}: not a Docker config")
    helpers = bool(doc.get("credsStore") or doc.get("credHelpers"))
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return None, helpers
    wanted = {h.lower() for h in _DOCKER_HUB_KEYS} if host == DOCKER_HUB else {host.lower()}
    for key, entry in auths.items():
        if not isinstance(entry, dict) or _key_host(str(key)) not in {_key_host(w) for w in wanted}:
            continue
        auth = entry.get("auth")
        if isinstance(auth, str) and auth:
            try:
                user, sep, password = base64.b64decode(auth, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise SourceError(f"{config_file}: the auth entry for {key} is not base64 user:password") from None
            if sep:
                return Credentials(user, password), helpers
        name, secret = entry.get("username"), entry.get("password")
        if isinstance(name, str) and isinstance(secret, str) and name:
            return Credentials(name, secret), helpers
    return None, helpers


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    return name in ("localhost", "::1") or name.startswith("127.")


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    """A redirect is followed only to HTTPS, or to plain HTTP on loopback when plain HTTP was allowed."""

    def __init__(self, allow_http: bool) -> None:
        self.allow_http = allow_http

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: http.client.HTTPMessage, newurl: str) -> urllib.request.Request | None:
        new = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl))
        if new.scheme != "https" and not (new.scheme == "http" and self.allow_http and is_loopback(new.netloc)):
            raise SourceError(f"refusing a redirect to {new.scheme or 'a relative'} URL on {new.netloc or '?'}: only "
                              "HTTPS (or plain HTTP on loopback with --insecure-registry) is followed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _Deadline:
    """The end of a pull (monotonic), and watchdogs that shut a socket down when its time is up: a server that
    sends its headers a byte at a time never trips a per-read timeout."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False

    def left(self) -> float:
        return self.end - time.monotonic()

    def watch(self, sock: socket.socket, within: float, cut_flag: list[bool] | None = None) -> threading.Timer:
        def cut() -> None:
            self.expired = self.expired or self.left() <= 0
            if cut_flag is not None:
                cut_flag.append(True)
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

        timer = threading.Timer(max(0.0, min(within, self.left())), cut)
        timer.daemon = True
        timer.start()
        return timer


def _watched_connection(base: type[http.client.HTTPConnection], client: RegistryClient) -> Any:
    class Watched(base):  # type: ignore[valid-type,misc]
        def connect(self) -> None:
            super().connect()
            client._arm(self.sock)

    return Watched


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, client: RegistryClient) -> None:
        super().__init__(context=ssl.create_default_context())
        self.client = client

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched_connection(http.client.HTTPSConnection, self.client), req,
                            context=self._context)  # type: ignore[attr-defined]


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, client: RegistryClient) -> None:
        super().__init__()
        self.client = client

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched_connection(http.client.HTTPConnection, self.client), req)


_PARAM = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {"realm": ..., ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for m in _PARAM.finditer(rest):
        value = m.group(2) if m.group(2) is not None else (m.group(3) or "")
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return scheme.lower(), params


class _ResponseStream(io.RawIOBase):
    """An HTTP response body whose read errors become ``SourceError``; it must keep ``MIN_RATE`` on average after
    ``MIN_RATE_GRACE`` seconds, and end before the pull's deadline."""

    def __init__(self, response: Any, where: str, deadline: _Deadline | None = None) -> None:
        self._response, self._where, self._deadline = response, where, deadline
        self._start = time.monotonic()
        self._received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:  # read1: what one receive brings, so that the rate is checked as the bytes come
            data: bytes = self._response.read1(len(buffer))
            n = len(data)
            buffer[:n] = data
        except (OSError, http.client.HTTPException) as e:
            if self._deadline is not None and self._deadline.expired:
                raise SourceError(f"{self._where}: the pull's deadline of {self._deadline.seconds:g} s "
                                  "passed") from None
            raise SourceError(f"{self._where}: the download broke off: {e}") from None
        self._received += n
        elapsed = time.monotonic() - self._start
        if self._deadline is not None and self._deadline.left() <= 0:
            raise SourceError(f"{self._where}: the pull's deadline of {self._deadline.seconds:g} s passed")
        if n and elapsed > MIN_RATE_GRACE and self._received < MIN_RATE * elapsed:
            raise SourceError(f"{self._where}: the download is slower than {MIN_RATE >> 10} KiB/s")
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


class RegistryClient:
    """GETs against one repository of one registry, with the authentication it asks for."""

    def __init__(self, registry: str, repository: str, *, insecure: bool = False,
                 credentials: Credentials | None = None, helpers: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, deadline: float = DEFAULT_DEADLINE) -> None:
        self.registry, self.repository = registry, repository
        self.host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        self.plain_http = insecure and is_loopback(self.host)
        self.scheme = "http" if self.plain_http else "https"
        self.credentials, self.helpers, self.timeout = credentials, helpers, timeout
        self._authorization: str | None = None
        self.deadline = _Deadline(deadline)
        self._header_timers: list[threading.Timer] = []
        self._headers_cut: list[bool] = []  # a header watchdog fired
        self._deadline_timers: list[threading.Timer] = []
        self._opener = urllib.request.build_opener(
            _NoDowngrade(self.plain_http), _HTTPSHandler(self), _HTTPHandler(self))

    def _arm(self, sock: socket.socket) -> None:
        """A new connection: its response headers must arrive within the timeout, its body before the deadline."""
        # Twice the timeout: a silent server trips the per-read timeout first; this catches one that trickles.
        self._header_timers.append(self.deadline.watch(sock, 2 * self.timeout, self._headers_cut))
        self._deadline_timers.append(self.deadline.watch(sock, self.deadline.left()))

    def close(self) -> None:
        """Stop the watchdogs (one idle thread per connection until the deadline otherwise)."""
        for timer in self._deadline_timers:
            timer.cancel()
        self._deadline_timers.clear()

    def url(self, path: str) -> str:
        return f"{self.scheme}://{self.host}/v2/{self.repository}/{path}"

    # -- errors --

    def _auth_error(self, what: str) -> SourceError:
        state = "failed" if self.credentials else "required"
        extra = "; credential helpers (credsStore/credHelpers) are not supported" if self.helpers and not \
            self.credentials else ""
        return SourceError(f"authentication {state} for {what}: {_AUTH_HINT}{extra}")

    def _http_error(self, e: urllib.error.HTTPError, what: str, not_found: str) -> SourceError:
        if e.code == 401:
            return self._auth_error(what)
        if e.code == 403:
            return SourceError(f"access to {what} denied by {self.registry}: {_AUTH_HINT} with pull rights")
        if e.code == 404:
            return SourceError(not_found)
        if e.code == 429:
            return SourceError(f"rate limited by {self.registry}: retry later or authenticate")
        return SourceError(f"registry {self.registry} answered {e.code} {e.reason} for {what}")

    def _network_error(self, e: BaseException) -> SourceError:
        if isinstance(e, urllib.error.URLError) and isinstance(e.reason, SourceError):
            return e.reason  # a refused redirect
        if self.deadline.expired or self.deadline.left() <= 0:
            return SourceError(f"registry {self.registry}: the pull's deadline of {self.deadline.seconds:g} s passed")
        if self._headers_cut:
            self._headers_cut.clear()
            return SourceError(f"registry {self.registry} did not send its response within {2 * self.timeout:g} s")
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        if isinstance(reason, TimeoutError | socket.timeout):
            return SourceError(f"registry {self.registry} did not answer within {self.timeout:g} s")
        if isinstance(reason, ssl.SSLError | ssl.CertificateError):
            hint = ("; for a plain-HTTP registry on localhost pass --insecure-registry"
                    if is_loopback(self.host) and not self.plain_http else "")
            return SourceError(f"registry {self.registry}: TLS failed: {reason}{hint}")
        if isinstance(reason, OSError) and reason.strerror:
            reason = reason.strerror
        return SourceError(f"registry {self.registry} is unreachable: {reason}")

    # -- requests --

    def _send(self, url: str, accept: str | None, authorization: str | None) -> Any:
        request = urllib.request.Request(url, method="GET")
        request.add_header("User-Agent", f"muslcheck/{__version__}")
        if accept:
            request.add_header("Accept", accept)
        if authorization:
            request.add_unredirected_header("Authorization", authorization)
        if self.deadline.left() <= 0:
            raise SourceError(f"registry {self.registry}: the pull's deadline of {self.deadline.seconds:g} s passed")
        try:
            response = self._opener.open(request, timeout=min(self.timeout, max(self.deadline.left(), 0.001)))
        finally:  # the headers are in (or failed): only the deadline watches the body now
            for timer in self._header_timers:
                timer.cancel()
            self._header_timers.clear()
        if self._headers_cut:  # cut short by the watchdog, the headers can look complete
            response.close()
            raise OSError("the response headers were cut at the time limit")
        return response

    def get(self, path: str, *, accept: str | None, what: str, not_found: str) -> Any:
        """The response to GET /v2/<repository>/<path>, authenticating once when challenged."""
        url = self.url(path)
        for attempt in range(2):
            try:
                return self._send(url, accept, self._authorization)
            except urllib.error.HTTPError as e:
                challenge = e.headers.get("WWW-Authenticate", "") if e.code == 401 else ""
                e.close()
                if e.code == 401 and attempt == 0 and self._authenticate(challenge, what):
                    continue
                raise self._http_error(e, what, not_found) from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                raise self._network_error(e) from None
        raise self._auth_error(what)

    def _authenticate(self, challenge: str, what: str) -> bool:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if self.credentials is None:
                return False
            self._authorization = self.credentials.basic()
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        self._authorization = "Bearer " + self._token(params, what)
        return True

    def _token(self, params: dict[str, str], what: str) -> str:
        realm = urllib.parse.urlsplit(params["realm"])
        if realm.scheme not in ("https", "http") or not realm.netloc:
            raise SourceError(f"registry {self.registry} sent a bad token realm")
        if realm.scheme == "http" and not (self.plain_http and is_loopback(realm.netloc)):
            raise SourceError(f"registry {self.registry} asks for a token over plain HTTP from {realm.netloc}; "
                              "refusing")
        query = [(k, v) for k, v in (("service", params.get("service")),
                                     ("scope", params.get("scope") or f"repository:{self.repository}:pull"))
                 if v]
        url = params["realm"] + ("&" if realm.query else "?") + urllib.parse.urlencode(query)
        try:
            with self._send(url, "application/json",
                            self.credentials.basic() if self.credentials else None) as response:
                data = oci.read_capped(response, MAX_TOKEN_BYTES, f"token from {realm.netloc}")
        except urllib.error.HTTPError as e:
            e.close()
            if e.code in (401, 403):
                raise self._auth_error(what) from None
            if e.code == 429:
                raise SourceError(f"rate limited by {realm.netloc}: retry later or authenticate") from None
            raise SourceError(f"token server {realm.netloc} answered {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            raise self._network_error(e) from None
        try:
            doc = json.loads(data)
        except ValueError:
            doc = None
        token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise SourceError(f"token server {realm.netloc} sent no token")
        return token

    def read_document(self, kind: str, reference: str, accept: str | None, what: str,
                      not_found: str) -> tuple[bytes, str | None, str | None]:
        """A manifest or small blob: (bytes, Content-Type, Docker-Content-Digest)."""
        with self.get(f"{kind}/{reference}", accept=accept, what=what, not_found=not_found) as response:
            try:
                data = oci.read_capped(response, oci.MAX_JSON_BYTES, what)
            except (OSError, http.client.HTTPException) as e:
                raise self._network_error(e) from None
            return data, response.headers.get("Content-Type"), response.headers.get("Docker-Content-Digest")


class RegistryBlobs:
    def __init__(self, client: RegistryClient, name: str) -> None:
        self.client, self.name = client, name

    @contextmanager
    def open_blob(self, digest: str) -> Iterator[BinaryIO]:
        if not DIGEST.fullmatch(digest):
            raise SourceError(f"{self.name}: bad digest {digest!r}")
        response = self.client.get(f"blobs/{digest}", accept=None, what=self.name,
                                   not_found=f"blob {digest} of {self.name} not found on {self.client.registry}")
        stream = io.BufferedReader(_ResponseStream(response, f"{self.name}: blob {digest}", self.client.deadline),
                                   buffer_size=1 << 20)
        with stream:
            yield stream

    def locate_blob(self, digest: str) -> BlobLocation | None:
        return None  # a registry's blobs only stream


class RegistrySource:
    kind = ReferenceKind.REGISTRY

    def __init__(self, name: str, *, tag: str | None = None, digest: str | None = None,
                 platform: str | None = None, insecure: bool = False, docker_config: Path | None = None,
                 reference: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                 deadline: float = DEFAULT_DEADLINE) -> None:
        registry, _, repository = name.partition("/")
        if not repository:
            raise SourceError(f"{name}: not a registry/repository name")
        self.name, self.registry, self.repository = name, registry, repository
        self.tag, self.digest, self.platform = tag, digest, platform
        self.insecure, self.docker_config, self.timeout, self.deadline = insecure, docker_config, timeout, deadline
        self.reference = reference or f"{self.kind}:{name}"

    @classmethod
    def from_reference(cls, ref: Reference, *, platform: str | None, insecure_registry: bool = False,
                       docker_config: Path | None = None) -> RegistrySource:
        return cls(part_of(ref, ref.name, "image name"), tag=ref.tag, digest=ref.digest, platform=platform,
                   insecure=insecure_registry, docker_config=docker_config, reference=ref.text)

    @property
    def display(self) -> str:
        short = self.name.removeprefix(f"{DOCKER_HUB}/library/").removeprefix(f"{DOCKER_HUB}/")
        return f"{short}@{self.digest}" if self.digest else f"{short}:{self.tag or 'latest'}"

    @contextmanager
    def open(self) -> Iterator[Image]:
        credentials, helpers = load_credentials(docker_config_file(self.docker_config), self.registry)
        client = RegistryClient(self.registry, self.repository, insecure=self.insecure, credentials=credentials,
                                helpers=helpers, timeout=self.timeout, deadline=self.deadline)
        accept = ", ".join(oci.ACCEPT)
        ref = self.digest or self.tag or "latest"
        where = "" if self.display.startswith(f"{self.registry}/") else f" on {self.registry}"
        data, content_type, header_digest = client.read_document(
            "manifests", ref, accept, self.display, f"{self.display} not found{where}")
        if self.digest:
            oci.verify_bytes(data, self.digest, self.reference)
        elif header_digest and DIGEST.fullmatch(header_digest):
            oci.verify_bytes(data, header_digest, self.reference)
        root_digest = "sha256:" + hashlib.sha256(data).hexdigest()
        root = oci.parse_document(data, content_type, self.reference)

        def fetch(desc: oci.Descriptor) -> bytes:
            oci.check_size(desc, self.reference)
            kind = "manifests" if desc.media_type in (*oci.INDEX_TYPES, *oci.MANIFEST_TYPES) else "blobs"
            body, _, _ = client.read_document(
                kind, desc.digest, accept if kind == "manifests" else None, self.display,
                f"{desc.digest} of {self.display} not found{where}")
            return oci.verify_document(body, desc, self.reference)

        try:
            selected = oci.select_image(root, fetch, self.platform, self.reference, root_digest=root_digest)
            yield Image(self.reference, self.kind, selected.layers, selected.config,
                        RegistryBlobs(client, self.display))
        finally:
            client.close()
