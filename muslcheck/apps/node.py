"""npm packages that own Node addons, the musl builds npm or node-gyp-build would pick on Alpine instead.

Two ways a package ships per-libc builds:

* per-platform optional dependencies (``@swc/core-linux-x64-gnu`` and ``-musl``, ``@img/sharp-linux-x64`` and
  ``@img/sharp-linuxmusl-x64``): npm installs only the one whose ``os``/``cpu``/``libc`` fields match the machine
  (npm-install-checks ``checkPlatform``, libc from detect-libc), so a glibc install holds only the gnu one;
* prebuildify's ``prebuilds/<platform>-<arch>/*.node``, chosen at run time by node-gyp-build (4.8.4,
  ``node-gyp-build.js``): libc is ``musl`` when ``/etc/alpine-release`` exists (or the ``LIBC`` variable says so),
  files tagged with another libc are skipped, and the rest are ranked: runtime ``node`` first, then an ``abi``
  tag over none, then the most recognised tags. ``build/Release/*.node`` wins over every prebuild.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from muslcheck.apps.metadata import read_metadata
from muslcheck.apps.model import Ecosystem, Host, Identified, Package
from muslcheck.apps.registry import Detector, HostProcess, MetadataFiles, register
from muslcheck.elf import ElfFacts
from muslcheck.ldso.tree import Resolved, RootFS, join, parent
from muslcheck.model.options import Context
from muslcheck.model.report import Skip
from muslcheck.targets.archives import ARCHIVE_SEPARATOR

# What the node process defines for addons. Node's addon documentation: "Only the libuv, OpenSSL, V8, and zlib
# symbols are purposefully re-exported by Node.js"; Node-API and node's own C++ API besides. An official
# v20 binary exports them all (OpenSSL, and zlib both plain and as Chromium's Cr_z_ names).
NODE_PROVIDES: tuple[str, ...] = (
    "napi_", "node_api_", "node_module_register", "uv_",
    "_ZN2v8", "_ZNK2v8", "_ZTVN2v8", "_ZN5cppgc", "_ZNK5cppgc", "_ZN4node", "_ZNK4node", "_ZTVN4node",
    # OpenSSL
    "OPENSSL_", "OpenSSL_", "OSSL_", "CRYPTO_", "ERR_", "EVP_", "BIO_", "BN_", "RAND_", "OBJ_", "ASN1_", "PEM_",
    "X509", "PKCS", "SSL_", "SSL3_", "TLS_", "TLSv1", "DTLS", "RSA_", "DSA_", "DH_", "EC_", "ECDSA_", "ECDH_",
    "HMAC", "CMAC_", "ENGINE_", "CONF_", "NCONF_", "OCSP_", "CMS_", "UI_", "SMIME_", "AES_", "DES_",
    "MD4", "MD5", "SHA1", "SHA224", "SHA256", "SHA384", "SHA512", "d2i_", "i2d_",
    # zlib
    "Cr_z_", "deflate", "inflate", "crc32", "adler32", "compress", "uncompress", "zlibVersion", "zError",
    "get_crc_table", "gz",
)

_PLATFORM_PACKAGE = re.compile(
    r"^(?P<base>.+?)-(?:linux|linuxmusl)-(?:x64|arm64|arm|ia32|riscv64|ppc64|s390x|loong64)"
    r"(?:-(?:gnu|glibc|gnueabihf|musl|musleabihf))?$")
_NODE_ARCH_ARMV = {"arm64": "8", "arm": "7"}  # node-gyp-build's armv: "8" on arm64, process.config's arm_version
_UV_MAJOR = "1"  # process.versions.uv of every Node release


# Every package's package.json: its name, version and libc, and the optional dependencies naming musl siblings.
METADATA_FILES: MetadataFiles = {"package.json": lambda path: "node_modules/" in path}


@dataclass(frozen=True)
class PackageJson:
    name: str | None
    version: str | None
    libc: tuple[str, ...] = ()
    optional_dependencies: frozenset[str] = frozenset()
    dependencies: frozenset[str] = frozenset()


def parse_package_json(path: str, text: str) -> tuple[PackageJson, list[Skip]]:
    """The fields used here; a field of the wrong type is dropped with a Skip, bad JSON drops them all."""
    try:
        data = json.loads(text)
    except ValueError as e:
        return PackageJson(None, None), [Skip(path, f"not JSON: {str(e)[:100]}", unchecked=False)]
    except RecursionError:
        return PackageJson(None, None), [Skip(path, "not JSON: nested too deeply", unchecked=False)]
    if not isinstance(data, dict):
        return PackageJson(None, None), [Skip(path, "not a JSON object", unchecked=False)]
    problems: list[str] = []

    def text_field(key: str) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, str) and 0 < len(value) <= 214 and value.isprintable() and " " not in value:
            return value
        problems.append(key)
        return None

    def names(key: str) -> frozenset[str]:
        value = data.get(key, {})
        if isinstance(value, dict):
            return frozenset(k for k in value if isinstance(k, str))
        problems.append(key)
        return frozenset()

    libc = data.get("libc", [])
    if isinstance(libc, str):
        libc = [libc]
    if not isinstance(libc, list) or not all(isinstance(x, str) for x in libc):
        problems.append("libc")
        libc = []
    found = PackageJson(text_field("name"), text_field("version"), tuple(libc),
                        names("optionalDependencies"), names("dependencies"))
    skips = [Skip(path, f"package.json field of the wrong form: {', '.join(problems)}", unchecked=False)]
    return found, skips if problems else []


def package_dir_of(path: str) -> str | None:
    """The nearest enclosing ``node_modules/<name>`` or ``node_modules/@scope/<name>`` directory."""
    parts = path.split("/")
    for i in range(len(parts) - 2, 1, -1):
        if parts[i - 1] == "node_modules" and not parts[i].startswith((".", "@")):
            return "/".join(parts[: i + 1])
        if i >= 2 and parts[i - 2] == "node_modules" and parts[i - 1].startswith("@"):
            return "/".join(parts[: i + 1])
    return None


def node_modules_of(package_dir: str) -> str:
    """The node_modules directory a package directory sits in."""
    up = parent(package_dir)
    return parent(up) if up.rsplit("/", 1)[-1].startswith("@") else up


def is_addon(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith(".node") or ("/node_modules/" in path and (name.endswith(".so") or ".so." in name))


def musl_names(name: str, libc: tuple[str, ...]) -> tuple[str, ...]:
    """The musl counterparts of a glibc platform package's name (none when it is not one)."""
    if "musl" in libc:
        return ()
    if name.endswith("-gnu"):
        return (name[:-4] + "-musl",)
    if name.endswith("-glibc"):  # @parcel/watcher-linux-x64-glibc and -musl
        return (name[: -len("-glibc")] + "-musl",)
    if name.endswith("-gnueabihf"):
        return (name[: -len("-gnueabihf")] + "-musleabihf",)
    if "glibc" in libc and "-linux-" in name:  # sharp: @img/sharp-linux-x64 and @img/sharp-linuxmusl-x64
        return (name.replace("-linux-", "-linuxmusl-", 1),)
    return ()


def parent_candidates(name: str) -> tuple[str, ...]:
    """Likely names of the package declaring a platform package (@rollup/rollup-linux-x64-gnu -> rollup)."""
    match = _PLATFORM_PACKAGE.match(name)
    if match is None:
        return ()
    base = match.group("base")
    return tuple(dict.fromkeys([base, base.rsplit("/", 1)[-1]]))


class _Reader:
    """package.json files, each read once; the problems of those asked for with ``report`` collected."""

    def __init__(self, root: RootFS) -> None:
        self.root = root
        self.problems: list[Skip] = []
        self._cache: dict[str, tuple[PackageJson | None, list[Skip]]] = {}
        self._reported: set[str] = set()
        self._listed: dict[str, list[str]] = {}

    def package_json(self, directory: str, report: bool = False) -> PackageJson | None:
        """None when there is no package.json; its problems kept only for packages that matter (not siblings)."""
        if directory not in self._cache:
            path = join(directory, "package.json")
            text = read_metadata(self.root, path)
            if isinstance(text, Skip):
                self._cache[directory] = PackageJson(None, None), [text]
            elif text is not None:
                self._cache[directory] = parse_package_json(path, text)
            else:
                self._cache[directory] = None, []
        found, skips = self._cache[directory]
        if report and directory not in self._reported:
            self._reported.add(directory)
            self.problems.extend(skips)
        return found

    def packages_in(self, node_modules: str) -> list[str]:
        """Every package directory directly in a node_modules directory (scoped ones too)."""
        if node_modules not in self._listed:
            found: list[str] = []
            for name in self.root.list_dir(node_modules):
                if name.startswith("@"):
                    scope = join(node_modules, name)
                    found.extend(join(scope, n) for n in self.root.list_dir(scope))
                elif not name.startswith("."):
                    found.append(join(node_modules, name))
            self._listed[node_modules] = found
        return self._listed[node_modules]


def identify(root: RootFS, elves: Mapping[str, ElfFacts]) -> Identified:
    """npm packages owning Node addons (and shared libraries under node_modules), and which prebuilt addon
    node-gyp-build loads on musl (``selected``) or never loads there (``unused``)."""
    reader = _Reader(root)
    by_dir: dict[str, list[str]] = {}
    for path in sorted(elves):
        if ARCHIVE_SEPARATOR not in path and is_addon(path) and (directory := package_dir_of(path)) is not None:
            by_dir.setdefault(directory, []).append(path)
    packages: list[Package] = []
    owner: dict[str, Package] = {}
    selected: dict[str, str] = {}
    unused: dict[str, str] = {}
    elf_paths = set(elves)
    for directory, paths in sorted(by_dir.items()):
        found = reader.package_json(directory, report=True)
        if found is None:
            reader.problems.append(Skip(join(directory, "package.json"), "no package.json: the name is the directory's",
                                        unchecked=False))
            found = PackageJson(None, None)
        name = found.name or directory.rsplit("node_modules/", 1)[-1]
        advice, notes = _musl_sibling(root, reader, directory, name, found)
        choice = choose_prebuilds(root, directory, elf_paths)
        selected.update(choice.selected)
        unused.update(choice.unused)
        package = Package(Ecosystem.NPM, name, found.version, directory, Host.NODE, {}, advice, notes + choice.notes)
        packages.append(package)
        owner.update((p, package) for p in paths)
    return Identified(tuple(packages), owner, tuple(reader.problems), selected, unused)


def _musl_sibling(root: RootFS, reader: _Reader, directory: str, name: str,
                  found: PackageJson) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Advice and notes for a glibc platform package whose parent also declares a musl one."""
    candidates = musl_names(name, found.libc)
    if not candidates:
        return (), ()
    node_modules = node_modules_of(directory)
    declaring = _declaring_parent(reader, node_modules, name, candidates)
    if declaring is None:
        return (), ()
    parent_name, musl = declaring
    installed = root.resolve(join(node_modules, musl))
    if isinstance(installed, Resolved) and installed.is_dir:
        return (), (f"{musl} is installed too: on musl, {parent_name} is meant to load that one",)
    advice = f"npm ci on Alpine installs {musl} instead (an optional dependency of {parent_name})"
    note = (f"{parent_name} declares both {name} and {musl} as optional dependencies; "
            "npm installs only the one whose os, cpu and libc match the machine")
    return (advice,), (note,)


def _declaring_parent(reader: _Reader, node_modules: str, name: str,
                      candidates: tuple[str, ...]) -> tuple[str, str] | None:
    """(parent name, musl sibling) for the package that lists ``name`` and a musl sibling as optional dependencies:
    likely names first, then the package owning this node_modules, then every package beside it."""
    likely = [*(join(node_modules, c) for c in parent_candidates(name)), parent(node_modules)]
    for directory in [*likely, *reader.packages_in(node_modules)]:
        pj = reader.package_json(directory, report=directory in likely)
        if pj is None or name not in pj.optional_dependencies:
            continue
        for musl in candidates:
            if musl in pj.optional_dependencies:
                return pj.name or directory.rsplit("/", 1)[-1], musl
    return None


@dataclass(frozen=True)
class PrebuildTags:
    """A prebuild's file name read as node-gyp-build's parseTags does."""

    file: str
    runtime: str | None = None
    napi: bool = False
    abi: str | None = None
    uv: str | None = None
    armv: str | None = None
    libc: str | None = None
    specificity: int = 0


def parse_tags(file: str) -> PrebuildTags | None:
    """``node.napi.musl.node`` -> runtime node, napi, libc musl, specificity 3; None unless it ends in .node."""
    parts = file.split(".")
    if parts.pop() != "node":
        return None
    runtime = abi = uv = armv = libc = None
    napi = False
    specificity = 0
    for tag in parts:
        if tag in ("node", "electron", "node-webkit"):
            runtime = tag
        elif tag == "napi":
            napi = True
        elif tag.startswith("abi"):
            abi = tag[3:]
        elif tag.startswith("uv"):
            uv = tag[2:]
        elif tag.startswith("armv"):
            armv = tag[4:]
        elif tag in ("glibc", "musl"):
            libc = tag
        else:
            continue
        specificity += 1
    return PrebuildTags(file, runtime, napi, abi, uv, armv, libc, specificity)


def rejection(tags: PrebuildTags, arch: str, abi: str | None) -> str | None:
    """Why node-gyp-build under Node on musl (ABI ``abi``; None: any ABI) skips a prebuild, or None."""
    if tags.runtime and tags.runtime != "node":
        return f"built for {tags.runtime}, not node"
    if tags.abi and abi is not None and tags.abi != abi and not tags.napi:
        return f"built for Node ABI {tags.abi}"
    if tags.uv and tags.uv != _UV_MAJOR:
        return f"built for libuv {tags.uv}"
    if tags.armv and tags.armv != _NODE_ARCH_ARMV.get(arch, ""):
        return f"built for ARMv{tags.armv}"
    if tags.libc and tags.libc != "musl":
        return f"tagged {tags.libc}: node-gyp-build on Alpine (/etc/alpine-release) takes libc=musl and skips it"
    return None


def _compare(a: PrebuildTags, b: PrebuildTags) -> int:
    """node-gyp-build's compareTags for runtime node: runtime node first, an abi tag first, more tags first."""
    if a.runtime != b.runtime:
        return -1 if a.runtime == "node" else 1
    if a.abi != b.abi:
        return -1 if a.abi else 1
    if a.specificity != b.specificity:
        return -1 if a.specificity > b.specificity else 1
    return 0


@dataclass(frozen=True)
class PrebuildChoice:
    selected: Mapping[str, str]
    unused: Mapping[str, str]
    notes: tuple[str, ...]


def choose_prebuilds(root: RootFS, package_dir: str, elf_paths: set[str]) -> PrebuildChoice:
    """What node-gyp-build loads on musl from ``<package>/prebuilds``, for every Linux architecture it holds."""
    prebuilds = join(package_dir, "prebuilds")
    tuples = [t for name in sorted(root.list_dir(prebuilds)) if (t := _parse_tuple(name)) and t.platform == "linux"]
    if not tuples:
        return PrebuildChoice({}, {}, ())
    selected: dict[str, str] = {}
    unused: dict[str, str] = {}
    notes: list[str] = []
    local = _local_build(root, package_dir)
    for arch in sorted({a for t in tuples for a in t.archs}):
        # a single-architecture directory before a multi-architecture one (stable: directory order)
        chosen = sorted((t for t in tuples if arch in t.archs), key=lambda t: len(t.archs))[0]
        directory = join(prebuilds, chosen.name)
        for other in tuples:
            if other is not chosen and arch in other.archs:
                for file in root.list_dir(join(prebuilds, other.name)):
                    unused.setdefault(join(join(prebuilds, other.name), file),
                                      f"node-gyp-build on linux-{arch} looks only in prebuilds/{chosen.name}")
        files = [tags for f in sorted(root.list_dir(directory)) if (tags := parse_tags(f)) is not None]
        if local is not None:
            for prebuild in files:
                unused[join(directory, prebuild.file)] = (f"node-gyp-build loads {local} before any prebuild "
                                                          "(unless PREBUILDS_ONLY is set)")
            if local in elf_paths:
                selected[local] = "node-gyp-build loads a local build (build/Release, build/Debug) before any prebuild"
            continue
        _rank(arch, directory, files, selected, unused, notes)
    for path in list(unused):
        if path in selected or path not in elf_paths:
            del unused[path]
    return PrebuildChoice({p: how for p, how in selected.items() if p in elf_paths}, unused, tuple(notes))


def _rank(arch: str, directory: str, files: list[PrebuildTags], selected: dict[str, str], unused: dict[str, str],
          notes: list[str]) -> None:
    """node-gyp-build's filter and sort for one prebuilds directory, for each Node ABI its files name."""
    where = directory.rsplit("/", 2)[-2] + "/" + directory.rsplit("/", 1)[-1]
    abis = sorted({t.abi for t in files if t.abi and not t.napi and rejection(t, arch, None) is None})
    scenarios: list[str | None] = [*abis, "other"] if abis else [None]
    for abi in scenarios:
        accepted = [t for t in files if rejection(t, arch, abi) is None]
        ranked = sorted(accepted, key=functools.cmp_to_key(_compare))
        when = "" if abi is None else (f" under a Node of ABI {abi}" if abi != "other" else
                                       f" under a Node whose ABI is none of {', '.join(abis)}")
        if not ranked:
            notes.append(f"node-gyp-build finds no build for musl in {where}{when}: require() fails with "
                         "'No native build was found' unless it is rebuilt on Alpine (npm rebuild)")
            for t in files:
                unused.setdefault(join(directory, t.file), rejection(t, arch, abi) or "not accepted")
            continue
        winner = ranked[0]
        tie = [t.file for t in ranked[1:] if _compare(winner, t) == 0]
        how = f"node-gyp-build on musl loads {where}/{winner.file}{when}: {_why_first(winner, ranked[1:])}"
        if tie:
            how += f" (tied with {', '.join(tie)}: directory order decides)"
        selected.setdefault(join(directory, winner.file), how)
        for t in files:
            path = join(directory, t.file)
            reason = rejection(t, arch, abi)
            if reason is None:
                reason = f"node-gyp-build prefers {winner.file}{when}"
            unused.setdefault(path, reason)


def _why_first(winner: PrebuildTags, others: list[PrebuildTags]) -> str:
    if winner.libc == "musl":
        return "tagged musl, the most specific build it accepts"
    if not others:
        return "the only build it accepts"
    return "the best ranked build it accepts (runtime node, then an ABI tag, then the most tags)"


@dataclass(frozen=True)
class PrebuildDir:
    platform: str
    archs: tuple[str, ...]
    name: str


def _parse_tuple(name: str) -> PrebuildDir | None:
    """``linux-x64+arm64`` -> linux, (x64, arm64), as node-gyp-build's parseTuple."""
    parts = name.split("-")
    if len(parts) != 2 or not parts[0]:
        return None
    archs = tuple(parts[1].split("+"))
    if not all(archs):
        return None
    return PrebuildDir(parts[0], archs, name)


def _local_build(root: RootFS, package_dir: str) -> str | None:
    """The first ``build/Release`` (then ``build/Debug``) .node file: node-gyp-build returns it before prebuilds."""
    for sub in ("build/Release", "build/Debug"):
        directory = join(package_dir, sub)
        for name in root.list_dir(directory):
            if name.endswith(".node"):
                return join(directory, name)
    return None


register(Detector(
    name="node",
    order=10,  # first: a .node file is an addon wherever it sits
    metadata=METADATA_FILES,
    installed=identify,
    # process.dlopen defaults to RTLD_LAZY
    host=HostProcess(Host.NODE, Context.DLOPEN_LAZY, NODE_PROVIDES, lambda path: path.endswith(".node")),
))
