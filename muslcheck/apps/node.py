"""npm packages that own native files, and the build each one's own loader picks on musl.

Each rule below was read from the loader's source; docs/applications.md cites file and version.

* **Platform packages** (``@swc/core-linux-x64-gnu`` and ``-musl``, ``@img/sharp-linux-x64`` and
  ``@img/sharp-linuxmusl-x64``, ``@parcel/watcher-linux-x64-glibc`` and ``-musl``): the parent's loader (a napi-rs
  generated binding, sharp's ``lib/sharp.js``, @parcel/watcher's ``index.js``) decides the libc at run time and
  requires the musl package on musl; it never falls back to the glibc one. npm installs only the packages whose
  ``os``/``cpu``/``libc`` match (``libc`` honoured from npm 10.4.0), so a tree installed on glibc holds the gnu one.
* **node-gyp-build** (4.8.4, ``node-gyp-build.js``): ``build/Release`` then ``build/Debug`` first, then only
  ``prebuilds/<platform>-<arch>/`` of the running platform (linux); libc is ``musl`` where ``/etc/alpine-release``
  exists (or ``LIBC`` says so); a file tagged with another libc is skipped, an untagged one matches both; the rest is
  ranked: runtime ``node`` first, then an ``abi`` tag over none, then the most tags.
* **node-gyp-build-optional-packages** (5.2.2, used by lmdb and msgpackr-extract): the same, with libc from
  detect-libc, stricter tags (a file must be tagged ``node`` and carry an ``abi`` or ``napi`` tag), and last the
  platform package ``@<name>/<name>-<platform>-<arch>`` whose top-level ``*.node`` files are ranked the same way.
* **prebuild-install** and **node-pre-gyp**: the binary is downloaded at install time, for the installing machine's
  libc, into ``build/Release`` or the package's ``binary.module_path``: a tree installed on glibc carries a glibc
  build, and the fix is to install again on Alpine.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from muslcheck.apps.flavour import flavour_of
from muslcheck.apps.metadata import read_metadata
from muslcheck.apps.model import Choice, Flavour, Host, Identified, Native, Package, package_key
from muslcheck.apps.registry import Detector, HostProcess, MetadataFiles, exports_prefix, imports, nowhere, register
from muslcheck.elf import ElfFacts
from muslcheck.ldso.tree import Resolved, RootFS, join, parent
from muslcheck.model.options import Context
from muslcheck.model.report import Ecosystem, Skip
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

# process.arch -> the ELF machine of its builds
NODE_ARCHS: Mapping[str, str] = {
    "x64": "x86_64", "arm64": "aarch64", "arm": "arm", "ia32": "i386", "riscv64": "riscv64", "ppc64": "ppc64",
    "s390x": "s390x", "loong64": "loongarch64", "mips64el": "mips64",
}
_ARCH_OF_MACHINE = {machine: arch for arch, machine in NODE_ARCHS.items()}
_PLATFORM_PACKAGE = re.compile(  # @swc/core-linux-x64-gnu, @img/sharp-linuxmusl-x64, @esbuild/linux-x64
    r"^(?P<base>.+?)[-/](?:linux|linuxmusl)-(?P<arch>x64|arm64|arm|ia32|riscv64|ppc64|s390x|loong64)"
    r"(?:-(?:gnu|glibc|gnueabihf|musl|musleabihf))?$")
_NODE_ARCH_ARMV = {"arm64": "8", "arm": "7"}  # node-gyp-build's armv: "8" on arm64, process.config's arm_version
_UV_MAJOR = "1"  # process.versions.uv of every Node release
_BUILD_TOOLS = "apk add build-base python3"  # what node-gyp needs to compile on Alpine
# Addons whose users catch a failed load: (what runs instead, what is lost). msgpackr 1.11's node-index.js wraps
# require('msgpackr-extract') in try/catch ("native module is optional").
_FALLBACKS: Mapping[str, tuple[str, str]] = {
    "msgpackr-extract": ("msgpackr catches the failed require('msgpackr-extract') and decodes strings in JavaScript",
                         "the native string extraction (msgpackr decodes more slowly)"),
}


# Every package's package.json: its name, version, libc, loader and the optional dependencies naming siblings.
METADATA_FILES: MetadataFiles = {"package.json": lambda path: "node_modules/" in path}


@dataclass(frozen=True)
class PackageJson:
    name: str | None
    version: str | None
    libc: tuple[str, ...] = ()
    optional_dependencies: frozenset[str] = frozenset()
    dependencies: frozenset[str] = frozenset()
    install: str = ""  # scripts.preinstall, install and postinstall, one per line
    binary: Mapping[str, str] = field(default_factory=dict)  # node-pre-gyp's module_name, module_path, package_name


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

    def strings(key: str, keys: tuple[str, ...]) -> dict[str, str]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            problems.append(key)
            return {}
        return {k: v for k in keys if isinstance(v := value.get(k), str)}

    libc = data.get("libc", [])
    if isinstance(libc, str):
        libc = [libc]
    if not isinstance(libc, list) or not all(isinstance(x, str) for x in libc):
        problems.append("libc")
        libc = []
    scripts = strings("scripts", ("preinstall", "install", "postinstall"))
    found = PackageJson(text_field("name"), text_field("version"), tuple(libc),
                        names("optionalDependencies"), names("dependencies"), "\n".join(scripts.values()),
                        strings("binary", ("module_name", "module_path", "package_name")))
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


def is_musl_variant(name: str, libc: tuple[str, ...]) -> bool:
    """A platform package built for musl: ``libc: ["musl"]``, or named so (``-musl``, ``-linuxmusl-``)."""
    return "musl" in libc or name.endswith(("-musl", "-musleabihf")) or "-linuxmusl-" in name


def parent_candidates(name: str) -> tuple[str, ...]:
    """Likely names of the package declaring a platform package (@rollup/rollup-linux-x64-gnu -> rollup)."""
    match = _PLATFORM_PACKAGE.match(name)
    if match is None:
        return ()
    base = match.group("base")
    if base.startswith("@") and "/" not in base:  # @esbuild/linux-x64 -> esbuild
        return (base[1:],)
    return tuple(dict.fromkeys([base, base.rsplit("/", 1)[-1]]))


def optional_platform_package(name: str, platform: str, arch: str) -> str:
    """The package node-gyp-build-optional-packages resolves last: lmdb -> @lmdb/lmdb-linux-x64."""
    return ("" if name.startswith("@") else f"@{name}/") + f"{name}-{platform}-{arch}"


class Loader(StrEnum):
    """How a package's own code finds its addon (from the dependencies and install script in its package.json)."""

    NODE_GYP_BUILD = "node-gyp-build"
    OPTIONAL_PACKAGES = "node-gyp-build-optional-packages"
    PREBUILD_INSTALL = "prebuild-install"
    NODE_PRE_GYP = "node-pre-gyp"


def loader_of(found: PackageJson) -> Loader | None:
    uses = found.dependencies | found.optional_dependencies
    if Loader.OPTIONAL_PACKAGES.value in uses:
        return Loader.OPTIONAL_PACKAGES
    if Loader.NODE_GYP_BUILD.value in uses:
        return Loader.NODE_GYP_BUILD
    if Loader.PREBUILD_INSTALL.value in uses or "prebuild-install" in found.install:
        return Loader.PREBUILD_INSTALL
    if uses & {"@mapbox/node-pre-gyp", "node-pre-gyp"} and "module_path" in found.binary:
        return Loader.NODE_PRE_GYP
    return None


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

    def installed(self, directory: str) -> bool:
        resolved = self.root.resolve(directory)
        return isinstance(resolved, Resolved) and resolved.is_dir


@dataclass
class _Picked:
    """What one package's loader does on musl: the files it loads and those it never loads (with how and why)."""

    selected: dict[str, str] = field(default_factory=dict)
    unused: dict[str, str] = field(default_factory=dict)
    choices: list[Choice] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Package:
    directory: str
    name: str
    found: PackageJson
    natives: tuple[Native, ...]  # its ELF files outside archives; member: the path inside the package


def identify(root: RootFS, elves: Mapping[str, ElfFacts]) -> Identified:
    """npm packages owning ELF files, and what each one's loader loads on musl (``selected``, with a ``Choice`` per
    architecture where the loader is known) or never loads there (``unused``)."""
    reader = _Reader(root)
    by_dir: dict[str, list[str]] = {}
    for path in sorted(elves):
        if ARCHIVE_SEPARATOR not in path and (directory := package_dir_of(path)) is not None:
            by_dir.setdefault(directory, []).append(path)
    packages: list[Package] = []
    owner: dict[str, Package] = {}
    selected: dict[str, str] = {}
    unused: dict[str, str] = {}
    choices: dict[str, tuple[Choice, ...]] = {}
    for directory, paths in sorted(by_dir.items()):
        found = reader.package_json(directory, report=True)
        if found is None:
            reader.problems.append(Skip(join(directory, "package.json"), "no package.json: the name is the directory's",
                                        unchecked=False))
            found = PackageJson(None, None)
        name = found.name or directory.rsplit("node_modules/", 1)[-1]
        natives = tuple(Native(p, p[len(directory) + 1:], elves[p].machine, flavour_of(elves[p])) for p in paths)
        picked = _pick(root, reader, _Package(directory, name, found, natives))
        host = Host.NODE if any(is_addon(p) for p in paths) else None  # else programs (esbuild) and their libraries
        package = Package(Ecosystem.NPM, name, found.version, directory, host, {},
                          tuple(dict.fromkeys(picked.advice)), tuple(dict.fromkeys(picked.notes)))
        packages.append(package)
        owner.update((p, package) for p in paths)
        selected.update((p, how) for p, how in picked.selected.items() if p in elves)
        unused.update((p, why) for p, why in picked.unused.items() if p in elves and p not in picked.selected)
        if picked.choices:
            choices[package_key(package)] = tuple(picked.choices)
    return Identified(tuple(packages), owner, tuple(reader.problems), selected, unused, choices)


def _pick(root: RootFS, reader: _Reader, package: _Package) -> _Picked:
    """The package as its parent's platform package first, else by its own loader."""
    declaring = _declaring_parent(reader, package)
    if declaring is not None:
        picked = _as_platform_package(root, reader, package, *declaring)
        if picked is not None:
            return picked
    return _by_own_loader(root, package)


def _declaring_parent(reader: _Reader, package: _Package) -> tuple[str, PackageJson] | None:
    """(directory, package.json) of the package that lists this one as an optional dependency: likely names first,
    then the package owning this node_modules, then (for a platform package's name) every package beside it. One
    that also lists a musl sibling wins: sharp, not @img/sharp-linux-x64, for @img/sharp-libvips-linux-x64."""
    node_modules = node_modules_of(package.directory)
    likely = [*(join(node_modules, c) for c in parent_candidates(package.name)), parent(node_modules)]
    musl = musl_names(package.name, package.found.libc)
    looks_like_platform = bool(parent_candidates(package.name) or musl)
    others = reader.packages_in(node_modules) if looks_like_platform else []
    first: tuple[str, PackageJson] | None = None
    for directory in dict.fromkeys([*likely, *others]):
        pj = reader.package_json(directory, report=directory in likely)
        if pj is not None and package.name in pj.optional_dependencies:
            if not musl or any(m in pj.optional_dependencies for m in musl):
                return directory, pj
            first = first or (directory, pj)
    return first


def _as_platform_package(root: RootFS, reader: _Reader, package: _Package, parent_dir: str,
                         declaring: PackageJson) -> _Picked | None:
    """What the declaring package's loader does with this platform package on musl; None when it is not one."""
    parent_name = declaring.name or parent_dir.rsplit("node_modules/", 1)[-1]
    if loader_of(declaring) is Loader.OPTIONAL_PACKAGES:
        for arch, machine in NODE_ARCHS.items():
            if package.name == optional_platform_package(parent_name, "linux", arch):
                return _optional_platform_package(root, package, parent_dir, parent_name, arch, machine)
    node_modules = node_modules_of(package.directory)
    siblings = [m for m in musl_names(package.name, package.found.libc) if m in declaring.optional_dependencies]
    if siblings:
        return _glibc_build(reader, package, node_modules, parent_dir, parent_name, declaring, siblings[0])
    linux = _PLATFORM_PACKAGE.match(package.name) is not None
    if not linux and not is_musl_variant(package.name, package.found.libc):
        return None
    if is_musl_variant(package.name, package.found.libc):
        how = (f"on musl, {parent_name} loads {package.name}: its loader decides the libc at run time and requires "
               "the musl package there")
    else:
        how = (f"{parent_name} declares no other Linux build for this architecture: npm installs {package.name} on "
               "musl too, and it is what runs there")
    return _all_selected(package, parent_name, how)


def _all_selected(package: _Package, library: str, how: str) -> _Picked:
    picked = _Picked(selected={n.path: how for n in package.natives})
    for machine in sorted({n.arch for n in package.natives}):
        mine = [n for n in package.natives if n.arch == machine]
        first = next((n for n in mine if n.path.endswith(".node")), mine[0])
        picked.choices.append(Choice(library, machine, first, how, (), None))
    return picked


def _glibc_build(reader: _Reader, package: _Package, node_modules: str, parent_dir: str, parent_name: str,
                 declaring: PackageJson, musl: str) -> _Picked:
    """A glibc platform package whose parent also declares a musl one: on musl the parent loads that one."""
    if reader.installed(join(node_modules, musl)) or reader.installed(join(join(parent_dir, "node_modules"), musl)):
        why = f"{musl} is installed too: on musl, {parent_name} loads that one, never {package.name}"
        return _Picked(unused={n.path: why for n in package.natives}, notes=[why])
    picked = _Picked()
    picked.advice.append(f"npm ci on Alpine installs {musl} (an optional dependency of {parent_name}; npm 10.4.0 "
                         f"and later leave {package.name} out there, older ones install both)")
    picked.notes.append(f"{parent_name} declares both {package.name} and {musl} as optional dependencies; npm "
                        "installs those whose os, cpu and libc match the machine")
    wasm = next((w for w in sorted(declaring.optional_dependencies) if "wasm32" in w.rsplit("/", 1)[-1]
                 and reader.installed(join(node_modules, w))), None)
    why = (f"on musl, {parent_name} requires {musl}, which is not installed: its loader does not fall back to "
           f"{package.name}")
    for n in package.natives:
        picked.unused[n.path] = why
    for machine in sorted({n.arch for n in package.natives}):
        mine = tuple(n for n in package.natives if n.arch == machine)
        fails = why + ("" if wasm else " and the require() fails ('Cannot find module' / 'Failed to load native "
                                       "binding')")
        picked.choices.append(Choice(
            parent_name, machine, None, fails, mine, None,
            fallback=f"{parent_name} loads {wasm} (WebAssembly) instead" if wasm else None,
            lost="native speed (the WebAssembly build runs instead)" if wasm else None))
    return picked


def _optional_platform_package(root: RootFS, package: _Package, parent_dir: str, parent_name: str, arch: str,
                               machine: str) -> _Picked:
    """node-gyp-build-optional-packages' last resort: the top-level .node files of ``@name/name-linux-<arch>``,
    unless the parent's own local build or prebuild comes first."""
    first = _local_build(root, parent_dir)
    if first is None:
        own = _prebuild_dir(root, parent_dir, arch)
        if own is not None:
            ranked = _rank(arch, own[1], strict=True)
            first = join(own[0], ranked.winners[0][1].file) if ranked.winners else None
    if first is not None:
        why = f"node-gyp-build-optional-packages loads {first} before the platform package {package.name}"
        return _Picked(unused={n.path: why for n in package.natives}, notes=[why])
    files = _tags_in(root, package.directory)
    where = package.name
    picked = _Picked()
    _record(picked, package, parent_name, machine, package.directory, where, _rank(arch, files, strict=True),
            "node-gyp-build-optional-packages")
    return picked


def _by_own_loader(root: RootFS, package: _Package) -> _Picked:
    loader = loader_of(package.found)
    picked = _Picked()
    local = _local_build(root, package.directory)
    if loader is Loader.NODE_PRE_GYP:
        _node_pre_gyp(package, picked)
        return picked
    tuples = [t for name in sorted(root.list_dir(join(package.directory, "prebuilds"))) if (t := _parse_tuple(name))]
    if tuples and loader is not Loader.PREBUILD_INSTALL:
        _prebuilds(root, package, tuples, local, loader is Loader.OPTIONAL_PACKAGES, picked)
        return picked
    if local is not None:
        _local(package, local, loader, picked)
    return picked


def _prebuilds(root: RootFS, package: _Package, tuples: list[PrebuildDir], local: str | None, strict: bool,
               picked: _Picked) -> None:
    """node-gyp-build's choice among ``prebuilds/<platform>-<arch>`` (only linux ones), for every architecture."""
    tool = "node-gyp-build-optional-packages" if strict else "node-gyp-build"
    prebuilds = join(package.directory, "prebuilds")
    for t in tuples:
        if t.platform != "linux":
            for n in package.natives:
                if n.path.startswith(join(prebuilds, t.name) + "/"):
                    picked.unused[n.path] = f"built for {t.platform}: {tool} on linux looks only in prebuilds/linux-*"
    linux = [t for t in tuples if t.platform == "linux"]
    for arch in sorted({a for t in linux for a in t.archs}):
        machine = NODE_ARCHS.get(arch, arch)
        # a single-architecture directory before a multi-architecture one (stable: directory order)
        chosen = sorted((t for t in linux if arch in t.archs), key=lambda t: len(t.archs))[0]
        directory = join(prebuilds, chosen.name)
        for other in linux:
            if other is not chosen and arch in other.archs:
                why = f"{tool} on linux-{arch} looks only in prebuilds/{chosen.name}"
                for n in package.natives:
                    if n.path.startswith(join(prebuilds, other.name) + "/") and n.arch == machine:
                        picked.unused.setdefault(n.path, why)
        files = [tags for f in sorted(root.list_dir(directory)) if (tags := parse_tags(f)) is not None]
        if local is not None:
            for prebuild in files:
                picked.unused[join(directory, prebuild.file)] = (f"{tool} loads {local} before any prebuild "
                                                                 "(unless PREBUILDS_ONLY is set)")
            continue
        _record(picked, package, package.name, machine, directory, f"prebuilds/{chosen.name}",
                _rank(arch, files, strict), tool)
    if local is not None:
        _local(package, local, Loader.NODE_GYP_BUILD, picked, how=f"{tool} loads a local build (build/Release, "
                                                                        "build/Debug) before any prebuild")


def _record(picked: _Picked, package: _Package, library: str, machine: str, directory: str, where: str,
            ranked: Ranked, tool: str) -> None:
    """A ranking's winners as selected, the other files as unused, and the architecture's Choice."""
    natives = {n.path: n for n in package.natives}
    hows: list[tuple[str, str]] = []
    for when, winner, accepted in ranked.winners:
        path = join(directory, winner.file)
        tie = [t.file for t in ranked.ties.get(winner.file, ())]
        how = f"{tool} on musl loads {where}/{winner.file}{when}: {_why_first(winner, accepted > 1)}"
        if tie:
            how += f" (tied with {', '.join(tie)}: directory order decides)"
        picked.selected.setdefault(path, how)
        hows.append((path, how))
    for file, reason in ranked.reasons.items():
        picked.unused.setdefault(join(directory, file), reason)
    for when in ranked.failing:
        picked.notes.append(f"{tool} finds no build for musl in {where}{when}: require() fails with 'No native build "
                            "was found'")
    mine = [n for n in package.natives if n.arch == machine]
    if not mine:
        return
    loaded = [natives[p] for p, _ in hows if p in natives]
    unused = tuple(n for n in mine if n not in loaded and n.path.startswith(directory + "/"))
    if loaded:
        representative = next((i for i, (when, _, _) in enumerate(ranked.winners) if not when or "none of" in when),
                              0)
        path, how = hows[representative]
        picked.choices.append(Choice(library, machine, natives.get(path, loaded[0]), how, unused, None))
        return
    how = f"{tool} finds no build for musl in {where}: require() fails with 'No native build was found'"
    fallback, lost = _FALLBACKS.get(library, (None, None))
    picked.choices.append(Choice(library, machine, None, how, unused, None, fallback, lost))
    picked.advice.append(f"npm rebuild {package.name} on Alpine: with no musl build to load, its install step "
                         f"compiles one ({_BUILD_TOOLS})")


def _local(package: _Package, local: str, loader: Loader | None, picked: _Picked, how: str | None = None) -> None:
    """A build in build/Release: downloaded (prebuild-install) or compiled (node-gyp) on the installing machine."""
    native = next((n for n in package.natives if n.path == local), None)
    if native is None:
        return
    if how is None and loader is Loader.PREBUILD_INSTALL:
        how = ("prebuild-install downloaded this build at install time for the installing machine's libc "
               "({name}-v{version}-{runtime}-v{abi}-{platform}{libc}-{arch}.tar.gz: 'linuxmusl' on musl); the "
               "package loads build/Release")
    elif how is None:
        how = "compiled at install time, on the installing machine (build/Release)"
    picked.selected[local] = how
    picked.choices.append(Choice(package.name, native.arch, native, how, (), None))
    if native.flavour is not Flavour.GLIBC:
        return
    if loader is Loader.PREBUILD_INSTALL:
        compiles = " or compiles it" if "node-gyp" in package.found.install else ""
        picked.advice.append(f"npm rebuild {package.name} on Alpine: prebuild-install then downloads its linuxmusl "
                             f"build{compiles} ({_BUILD_TOOLS} to compile)")
    else:
        picked.advice.append(f"npm rebuild {package.name} on Alpine: this build was made on a glibc machine "
                             f"({_BUILD_TOOLS} to compile it there)")


_TEMPLATE = re.compile(r"\{([a-z_]+)\}")


def _template_regex(template: str, values: Mapping[str, str]) -> re.Pattern[str]:
    """node-pre-gyp's eval_template as a pattern: known variables substituted, each other one a named group matching
    one path part (``{napi_build_version}`` -> ``(?P<napi_build_version>[^/]+)``)."""
    out, last, seen = [], 0, set()
    for match in _TEMPLATE.finditer(template):
        out.append(re.escape(template[last:match.start()]))
        name, value = match[1], values.get(match[1])
        if value is not None:
            out.append(re.escape(value))
        elif name in seen:
            out.append(f"(?P={name})")
        else:
            seen.add(name)
            out.append(f"(?P<{name}>[^/]+)")
        last = match.end()
    out.append(re.escape(template[last:]))
    return re.compile("".join(out))


def _expand(template: str, values: Mapping[str, str]) -> str:
    return _TEMPLATE.sub(lambda m: values.get(m[1], m[0]), template)


def _node_pre_gyp(package: _Package, picked: _Picked) -> None:
    """node-pre-gyp's binary.find: ``<module_path>/<module_name>.node``, the path's template evaluated on musl."""
    binary = package.found.binary
    module_name = binary.get("module_name", "")
    module_path = binary["module_path"].removeprefix("./").rstrip("/")
    package_name = binary.get("package_name", "{module_name}-v{version}-{node_abi}-{platform}-{arch}.tar.gz")
    for machine in sorted({n.arch for n in package.natives}):
        values = {"platform": "linux", "libc": "musl", "module_name": module_name, "configuration": "Release",
                  "arch": _ARCH_OF_MACHINE.get(machine, machine), "target_arch": _ARCH_OF_MACHINE.get(machine, machine)}
        if package.found.version:
            values["version"] = package.found.version
        wanted = _template_regex(f"{module_path}/{module_name}.node", values)
        mine = [n for n in package.natives if n.arch == machine]
        matches = ((n, m) for n in mine if (m := wanted.fullmatch(n.member)) is not None)
        found, match = next(matches, (None, None))
        if match is not None:  # the napi_build_version (or node_abi) the install chose, for the download's name
            values.update((k, v) for k, v in match.groupdict().items() if v is not None)
        looks = f"{_expand(module_path, values)}/{module_name}.node"
        for n in mine:
            if n is not found and n.member.endswith(".node"):
                picked.unused[n.path] = f"node-pre-gyp on musl loads {looks}, not this file"
        download = _expand(package_name, values)
        by_libc = "{libc}" in package_name
        if found is None:
            how = f"node-pre-gyp on musl looks for {looks}, absent: require() fails ('Cannot find module')"
            picked.choices.append(Choice(package.name, machine, None, how, tuple(n for n in mine if n.member.endswith(
                ".node")), None))
        else:
            how = (f"node-pre-gyp loads {found.member}, downloaded at install time for the installing machine"
                   + (" (its download names the libc: {libc})" if by_libc else " (its downloads do not name a libc)"))
            picked.selected[found.path] = how
            picked.choices.append(Choice(package.name, machine, found, how, (), None))
            if found.flavour is not Flavour.GLIBC:
                continue
        if by_libc:
            picked.advice.append(f"npm rebuild {package.name} on Alpine: node-pre-gyp then downloads {download}, or "
                                 f"compiles it where the release has none ({_BUILD_TOOLS})")
        else:
            picked.advice.append(f"npm rebuild {package.name} --build-from-source on Alpine: its downloads do not "
                                 f"name a libc, so node-pre-gyp would fetch the glibc build again ({_BUILD_TOOLS})")


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


def rejection(tags: PrebuildTags, arch: str, abi: str | None, strict: bool = False) -> str | None:
    """Why the loader under Node on musl (ABI ``abi``; None: any ABI) skips a prebuild, or None. ``strict``:
    node-gyp-build-optional-packages' matchTags, which also rejects a file without the ``node`` runtime tag and one
    with neither an ``abi`` nor a ``napi`` tag."""
    if tags.runtime != "node" and (tags.runtime or strict):
        return f"built for {tags.runtime}, not node" if tags.runtime else "no node tag: the loader requires one"
    if not tags.napi and strict and tags.abi is None:
        return "neither an abi nor a napi tag: the loader requires one"
    if tags.abi and abi is not None and tags.abi != abi and not tags.napi:
        return f"built for Node ABI {tags.abi}"
    if tags.uv and tags.uv != _UV_MAJOR:
        return f"built for libuv {tags.uv}"
    if tags.armv and tags.armv != _NODE_ARCH_ARMV.get(arch, ""):
        return f"built for ARMv{tags.armv}"
    if tags.libc and tags.libc != "musl":
        return f"tagged {tags.libc}: the loader on musl takes libc=musl and skips it"
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
class Ranked:
    """A directory's prebuilds as the loader's filter and sort leave them, for each Node ABI their names tell apart."""

    winners: tuple[tuple[str, PrebuildTags, int], ...]  # (" under a Node of ABI 115" or "", file, files accepted)
    failing: tuple[str, ...]  # the ABIs under which nothing is loaded (as in winners)
    reasons: Mapping[str, str]  # file -> why it is not loaded (the first scenario's reason)
    ties: Mapping[str, tuple[PrebuildTags, ...]]  # winner -> the files ranked equal to it


def _rank(arch: str, files: Sequence[PrebuildTags], strict: bool = False) -> Ranked:
    """node-gyp-build's filter and sort over one directory, for each Node ABI the files name (and any other)."""
    abis = sorted({t.abi for t in files if t.abi and not t.napi and rejection(t, arch, None, strict) is None})
    scenarios: list[str | None] = [*abis, "other"] if abis else [None]
    winners: list[tuple[str, PrebuildTags, int]] = []
    failing: list[str] = []
    reasons: dict[str, str] = {}
    ties: dict[str, tuple[PrebuildTags, ...]] = {}
    for abi in scenarios:
        ok = [t for t in files if rejection(t, arch, abi, strict) is None]
        ranked = sorted(ok, key=functools.cmp_to_key(_compare))
        when = "" if abi is None else (f" under a Node of ABI {abi}" if abi != "other" else
                                       f" under a Node whose ABI is none of {', '.join(abis)}")
        if not ranked:
            failing.append(when)
            for t in files:
                reasons.setdefault(t.file, rejection(t, arch, abi, strict) or "not accepted")
            continue
        winner = ranked[0]
        winners.append((when, winner, len(ranked)))
        ties[winner.file] = tuple(t for t in ranked[1:] if _compare(winner, t) == 0)
        for t in files:
            reasons.setdefault(t.file, rejection(t, arch, abi, strict) or f"the loader prefers {winner.file}{when}")
    won = {w.file for _, w, _ in winners}
    return Ranked(tuple(winners), tuple(failing), {f: r for f, r in reasons.items() if f not in won}, ties)


def _why_first(winner: PrebuildTags, several: bool) -> str:
    if winner.libc == "musl":
        return "tagged musl, the most specific build it accepts"
    if not several:
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


def _tags_in(root: RootFS, directory: str) -> list[PrebuildTags]:
    return [tags for f in sorted(root.list_dir(directory)) if (tags := parse_tags(f)) is not None]


def _prebuild_dir(root: RootFS, package_dir: str, arch: str) -> tuple[str, list[PrebuildTags]] | None:
    """The ``prebuilds/linux-*`` directory the loader reads for ``arch``, with its files' tags."""
    prebuilds = join(package_dir, "prebuilds")
    tuples = [t for n in root.list_dir(prebuilds) if (t := _parse_tuple(n)) and t.platform == "linux"
              and arch in t.archs]
    if not tuples:
        return None
    directory = join(prebuilds, sorted(tuples, key=lambda t: (len(t.archs), t.name))[0].name)
    return directory, _tags_in(root, directory)


def _local_build(root: RootFS, package_dir: str) -> str | None:
    """The first ``build/Release`` (then ``build/Debug``) .node file: node-gyp-build returns it before prebuilds."""
    for sub in ("build/Release", "build/Debug"):
        directory = join(package_dir, sub)
        for name in root.list_dir(directory):
            if name.endswith(".node"):
                return join(directory, name)
    return None


_ADDON_EXPORTS = ("napi_register_module_v1", "node_register_module_v")
_ADDON_IMPORTS = ("napi_module_register", "node_module_register")


def _node_addon(facts: ElfFacts) -> bool:
    """A Node addon: it exports Node-API's ``napi_register_module_v1`` or a NODE_MODULE's
    ``node_register_module_v<ABI>``, or (older addons) registers itself from a constructor through
    ``napi_module_register`` / ``node_module_register``, which it imports."""
    if exports_prefix(facts, *_ADDON_EXPORTS):
        return True
    return any(imports(facts, name) for name in _ADDON_IMPORTS)


register(Detector(
    name="node",
    order=10,  # first: a .node file is an addon wherever it sits
    metadata=METADATA_FILES,
    installed=identify,
    # process.dlopen defaults to RTLD_LAZY
    host=HostProcess(Host.NODE, Context.DLOPEN_LAZY, NODE_PROVIDES, nowhere, _node_addon,
                     lambda path: path.endswith(".node"), marks=(*_ADDON_EXPORTS, *_ADDON_IMPORTS)),
))
