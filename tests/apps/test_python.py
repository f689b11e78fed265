"""Installed distributions and wheels that own extension modules (muslcheck.apps.python)."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from muslcheck.apps import python, registry
from muslcheck.apps.model import METADATA_MAX_BYTES, Flavour, Host, Native, package_key
from muslcheck.elf import is_elf, read_elf_file
from muslcheck.ldso.tree import Resolved
from muslcheck.model.report import Ecosystem, Skip
from muslcheck.targets.archives import ArchiveMetadata
from muslcheck.targets.directory import DirectoryRoot
from tests.apps.apptrees import elves_of, put

SITE = "/usr/local/lib/python3.11/site-packages"
ORJSON_SO = f"{SITE}/orjson/orjson.cpython-311-x86_64-linux-gnu.so"
MANYLINUX_WHEEL = "Wheel-Version: 1.0\nGenerator: maturin (1.3.1)\nRoot-Is-Purelib: false\n" \
                  "Tag: cp311-cp311-manylinux_2_17_x86_64\nTag: cp311-cp311-manylinux2014_x86_64\n"


@pytest.fixture(scope="session")
def extension(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real glibc extension module, built with gcc."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    out = tmp_path_factory.mktemp("pyext")
    (out / "ext.c").write_text("#include <stdio.h>\nint PyInit_ext(void) { return puts(\"x\"); }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out / "ext.so"), str(out / "ext.c")], check=True)
    return out / "ext.so"




def dist(tree: Path, directory: str, record: str | bytes, metadata: str | bytes | None = None,
         wheel: str | bytes | None = None) -> None:
    put(tree, f"{SITE}/{directory}/RECORD", record)
    if metadata is not None:
        put(tree, f"{SITE}/{directory}/METADATA", metadata)
    if wheel is not None:
        put(tree, f"{SITE}/{directory}/WHEEL", wheel)


def orjson_tree(tree: Path, extension: Path) -> None:
    put(tree, ORJSON_SO, extension)
    put(tree, f"{SITE}/orjson/__init__.py", "")
    dist(tree, "orjson-3.9.10.dist-info",
         "orjson/__init__.py,sha256=abc,10\n"
         "orjson/orjson.cpython-311-x86_64-linux-gnu.so,sha256=def,12345\n"
         "orjson-3.9.10.dist-info/RECORD,,\n",
         "Metadata-Version: 2.1\nName: orjson\nVersion: 3.9.10\nSummary: Fast JSON\n  continued\n\nbody: text\n",
         MANYLINUX_WHEEL)


def test_a_manylinux_distribution_owns_its_extension(tmp_path: Path, extension: Path) -> None:
    orjson_tree(tmp_path, extension)
    found = python.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert found.problems == ()
    [package] = found.packages
    assert package.ecosystem is Ecosystem.PYPI
    assert (package.name, package.version) == ("orjson", "3.9.10")
    assert package.location == f"{SITE}/orjson-3.9.10.dist-info"
    assert package.host is Host.PYTHON
    assert package.details == {
        "wheel-tags": "cp311-cp311-manylinux_2_17_x86_64 cp311-cp311-manylinux2014_x86_64",
        "platform": "manylinux_2_17_x86_64 manylinux2014_x86_64",
    }
    assert package.advice == (
        "pip install orjson==3.9.10 in the Alpine image: pip there installs the release's musllinux wheel where one "
        "is published (never a manylinux one), else builds it from source (apk add build-base python3-dev)",)
    assert found.owner == {ORJSON_SO: package}
    # CPython 3.11 on musl never imports a -linux-gnu module: nothing of orjson loads there
    how = ("CPython 3.11 on musl imports only extension modules named *.cpython-311-x86_64-linux-musl.so, *.abi3.so "
           "or *.so: orjson.cpython-311-x86_64-linux-gnu.so is never imported: the import fails (ModuleNotFoundError)")
    assert found.unused == {ORJSON_SO: how}
    [choice] = found.choices[package_key(package)]
    assert (choice.library, choice.arch, choice.selected, choice.how, choice.fallback) == (
        "orjson", "x86_64", None, how, None)
    assert [n.path for n in choice.unused] == [ORJSON_SO]


def test_a_musllinux_distribution_needs_no_advice(tmp_path: Path, extension: Path) -> None:
    so = f"{SITE}/zstd/_zstd.cpython-311-x86_64-linux-musl.so"
    put(tmp_path, so, extension)
    dist(tmp_path, "zstd-1.5.5.1.dist-info", "zstd/_zstd.cpython-311-x86_64-linux-musl.so,sha256=x,1\n",
         "Name: zstd\nVersion: 1.5.5.1\n", "Tag: cp311-cp311-musllinux_1_2_x86_64\n")
    found = python.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert package.details["platform"] == "musllinux_1_2_x86_64"
    assert package.advice == ()
    assert found.owner[so] is package


def test_a_locally_built_linux_wheel_gets_the_advice_and_dist_packages_count(tmp_path: Path, extension: Path) -> None:
    site = "/usr/lib/python3/dist-packages"
    so = f"{site}/fastpkg/_speedups.so"
    put(tmp_path, so, extension)
    put(tmp_path, f"{site}/fastpkg-0.1.dist-info/RECORD", "fastpkg/_speedups.so,,\n")
    put(tmp_path, f"{site}/fastpkg-0.1.dist-info/METADATA", "Name: fastpkg\nVersion: 0.1\n")
    put(tmp_path, f"{site}/fastpkg-0.1.dist-info/WHEEL", "Tag: cp311-cp311-linux_x86_64\n")
    found = python.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert package.details["platform"] == "linux_x86_64"
    assert package.advice[0].startswith("pip install fastpkg==0.1 in the Alpine image: ")
    assert found.owner == {so: package}
    assert (found.unused, found.choices) == ({}, {})  # a plain .so module: CPython on musl imports it too


def test_record_paths_with_dotdot_and_unowned_extensions(tmp_path: Path, extension: Path) -> None:
    owned = f"{SITE}/pkg/_c.so"
    stray = f"{SITE}/stray/_stray.so"
    put(tmp_path, owned, extension)
    put(tmp_path, stray, extension)
    dist(tmp_path, "pkg-2.0.dist-info", "pkg/../pkg/./_c.so,sha256=x,1\n../../../bin/pkg-tool,,\n",
         "Name: pkg\nVersion: 2.0\n", "Tag: cp311-cp311-manylinux_2_28_x86_64\n")
    found = python.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert [p.name for p in found.packages] == ["pkg"]
    assert set(found.owner) == {owned}


def test_archive_members_are_not_this_detectors(tmp_path: Path, extension: Path) -> None:
    orjson_tree(tmp_path, extension)
    facts = read_elf_file(extension)
    elves = {**elves_of(tmp_path), f"{SITE}/x.whl!/orjson/orjson.so": facts}
    found = python.identify(DirectoryRoot(tmp_path), elves)
    assert set(found.owner) == {ORJSON_SO}


def test_without_metadata_the_directory_names_the_distribution(tmp_path: Path, extension: Path) -> None:
    put(tmp_path, ORJSON_SO, extension)
    dist(tmp_path, "orjson-3.9.10.dist-info", "orjson/orjson.cpython-311-x86_64-linux-gnu.so,,\n")
    found = python.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert (package.name, package.version, package.details) == ("orjson", "3.9.10", {})
    assert found.problems == (Skip(f"{SITE}/orjson-3.9.10.dist-info/METADATA",
                                   "no METADATA: name and version from the directory", unchecked=False),)


@pytest.mark.parametrize(("content", "reason"), [
    (b"Name: orjson\n\xff\xfeVersion: 1\n", "not UTF-8 text (byte 13)"),
    (b"Name: orjson\x00\x01\x02", "binary content (NUL bytes): not a metadata file"),
    ("Name: orjson\nthis is no header\n", "METADATA line 2 is not a 'Name: value' header"),
    ("Name: " + "x" * 70000 + "\n", "a line longer than 65536 characters: not a metadata file"),
    ("Name: not a valid name!\nVersion: 3.9.10\n", "METADATA has no valid Name header"),
])
def test_bad_metadata_is_a_skip_and_the_directory_name_stands_in(tmp_path: Path, extension: Path,
                                                                  content: str | bytes, reason: str) -> None:
    put(tmp_path, ORJSON_SO, extension)
    dist(tmp_path, "orjson-3.9.10.dist-info", "orjson/orjson.cpython-311-x86_64-linux-gnu.so,,\n", content,
         MANYLINUX_WHEEL)
    found = python.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert (package.name, package.version) == ("orjson", "3.9.10")
    assert found.problems == (Skip(f"{SITE}/orjson-3.9.10.dist-info/METADATA", reason, unchecked=False),)
    assert found.owner[ORJSON_SO] is package


@pytest.mark.parametrize(("record", "reason"), [
    (b"\x00\x01ELF garbage\x00", "binary content (NUL bytes): not a metadata file"),
    (b"orjson/x.so,sha256=\xc3\x28,1\n", "not UTF-8 text (byte 19)"),
    ("a" * 70000 + ",,\n", "a line longer than 65536 characters: not a metadata file"),
    ("x" * (METADATA_MAX_BYTES + 1), f"larger than {METADATA_MAX_BYTES} bytes: not a metadata file"),
])
def test_an_unreadable_record_owns_nothing(tmp_path: Path, extension: Path, record: str | bytes, reason: str) -> None:
    put(tmp_path, ORJSON_SO, extension)
    dist(tmp_path, "orjson-3.9.10.dist-info", record, "Name: orjson\nVersion: 3.9.10\n", MANYLINUX_WHEEL)
    found = python.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert found.packages == ()
    assert found.owner == {}
    assert found.problems == (Skip(f"{SITE}/orjson-3.9.10.dist-info/RECORD", reason, unchecked=False),)


def test_bad_record_lines_are_left_out_and_the_rest_used(tmp_path: Path, extension: Path) -> None:
    orjson_tree(tmp_path, extension)
    put(tmp_path, f"{SITE}/orjson-3.9.10.dist-info/RECORD",
        "just-a-path\norjson/orjson.cpython-311-x86_64-linux-gnu.so,sha256=x,1\na,b,c,d\n")
    found = python.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    assert [p.name for p in found.packages] == ["orjson"]
    assert found.problems == (Skip(f"{SITE}/orjson-3.9.10.dist-info/RECORD",
                                   "RECORD: 2 line(s) are not path,hash,size", unchecked=False),)


def test_a_bad_wheel_tag_is_left_out(tmp_path: Path, extension: Path) -> None:
    orjson_tree(tmp_path, extension)
    put(tmp_path, f"{SITE}/orjson-3.9.10.dist-info/WHEEL", "Tag: not a tag\nTag: cp311-cp311-manylinux_2_17_x86_64\n")
    found = python.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert package.details["wheel-tags"] == "cp311-cp311-manylinux_2_17_x86_64"
    assert found.problems == (Skip(f"{SITE}/orjson-3.9.10.dist-info/WHEEL",
                                   "WHEEL Tag is not python-abi-platform", unchecked=False),)


class _ContentNotKept(DirectoryRoot):
    """An image root that kept the listing but not this content: read_head raises OSError."""

    def read_head(self, resolved: Resolved, limit: int) -> bytes:
        if resolved.path.endswith("/METADATA"):
            raise OSError("content not kept")
        return super().read_head(resolved, limit)


def test_content_not_kept_counts_as_missing(tmp_path: Path, extension: Path) -> None:
    orjson_tree(tmp_path, extension)
    found = python.identify(_ContentNotKept(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    assert (package.name, package.version) == ("orjson", "3.9.10")
    assert [s.reason for s in found.problems] == ["no METADATA: name and version from the directory"]


WHEEL_LOCATION = "/app/wheels/orjson-3.9.10-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def test_a_wheel_file_from_its_members() -> None:
    package, problems = python.identify_wheel(WHEEL_LOCATION, {
        "orjson-3.9.10.dist-info/WHEEL": MANYLINUX_WHEEL.encode(),
        "orjson-3.9.10.dist-info/METADATA": b"Name: orjson\nVersion: 3.9.10\n",
        "orjson-3.9.10.dist-info/RECORD": b"orjson/orjson.so,,\n",
    })
    assert problems == ()
    assert package is not None
    assert (package.name, package.version, package.location) == ("orjson", "3.9.10", WHEEL_LOCATION)
    assert package.host is Host.PYTHON
    assert package.details["platform"] == "manylinux_2_17_x86_64 manylinux2014_x86_64"
    assert package.advice[0].startswith("pip install orjson==3.9.10 in the Alpine image")


def test_a_wheel_with_garbage_metadata_falls_back_to_its_names() -> None:
    package, problems = python.identify_wheel(WHEEL_LOCATION, {
        "orjson-3.9.10.dist-info/METADATA": b"\x00\x00garbage",
        "orjson-3.9.10.dist-info/WHEEL": b"\xff\xff",
    })
    assert package is not None
    assert (package.name, package.version) == ("orjson", "3.9.10")
    assert package.details["wheel-tags"] == "cp311-cp311-manylinux_2_17_x86_64 cp311-cp311-manylinux2014_x86_64"
    assert [(s.path, s.reason) for s in problems] == [
        (f"{WHEEL_LOCATION}!/orjson-3.9.10.dist-info/METADATA", "binary content (NUL bytes): not a metadata file"),
        (f"{WHEEL_LOCATION}!/orjson-3.9.10.dist-info/WHEEL", "not UTF-8 text (byte 0)"),
    ]
    assert not any(s.unchecked for s in problems)


def test_a_musllinux_wheel_inside_an_archive() -> None:
    location = "/app/lib.jar!/py/zstd-1.5.5.1-cp311-cp311-musllinux_1_2_x86_64.whl"
    package, problems = python.identify_wheel(location, {
        "zstd-1.5.5.1.dist-info/METADATA": b"Name: zstd\nVersion: 1.5.5.1\n"})
    assert problems == ()
    assert package is not None
    assert (package.name, package.details["platform"], package.advice) == ("zstd", "musllinux_1_2_x86_64", ())


def test_not_a_wheel() -> None:
    package, problems = python.identify_wheel("/app/thing.whl", {})
    assert package is None
    assert problems == (Skip("/app/thing.whl", "no .dist-info metadata and not a wheel file name", unchecked=False),)


def test_cpython_provides_every_export_of_libpython() -> None:
    """Every symbol libpython defines for extension modules starts with a CPYTHON_PROVIDES prefix."""
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    library = Path(str(libdir)) / str(soname)
    if not soname or not library.is_file() or not is_elf(library.read_bytes()[:4]):
        pytest.skip("this Python has no shared libpython")
    exports = {e.name for e in read_elf_file(library).exports if not e.plt_only}
    linker = {"_init", "_fini", "_edata", "_end", "__bss_start"}
    assert any(name.startswith("PyObject_") for name in exports)
    assert {n for n in exports - linker if not n.startswith(python.CPYTHON_PROVIDES)} == set()


@pytest.mark.parametrize(("name", "importable"), [
    ("_cffi.cpython-311-x86_64-linux-gnu.so", False),
    ("_cffi.cpython-313t-aarch64-linux-gnu.so", False),
    ("_cffi.cpython-312-arm-linux-gnueabihf.so", False),
    ("_cffi.cpython-310-x86_64-linux-gnu.so", True),  # CPython 3.10 on musl names its own modules linux-gnu too
    ("_cffi.cpython-311-x86_64-linux-musl.so", True),
    ("_cffi.abi3.so", True),
    ("_cffi.so", True),
    ("libfoo-1a2b3c4d.so.1.0", True),  # a vendored library, not a module
])
def test_which_module_names_cpython_on_musl_imports(name: str, importable: bool) -> None:
    assert python.unimportable_on_musl(f"{SITE}/pkg/{name}") is not importable


def numpy_tree(tree: Path, extension: Path, with_python: bool) -> list[str]:
    """numpy's manylinux layout: modules, and the libraries auditwheel vendored in numpy.libs."""
    files = ["numpy/core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so",
             "numpy/random/_pcg64.cpython-311-x86_64-linux-gnu.so", "numpy.libs/libgfortran-040039e1.so.5.0.0"]
    for f in files:
        put(tree, f"{SITE}/{f}", extension)
    listed = [*files, "numpy/__init__.py"]
    if with_python:  # mypyc-style: the pure-Python source beside each compiled module
        listed += ["numpy/core/_multiarray_umath.py", "numpy/random/_pcg64/__init__.py"]
    dist(tree, "numpy-1.26.4.dist-info", "".join(f"{f},,\n" for f in listed), "Name: numpy\nVersion: 1.26.4\n",
         "Tag: cp311-cp311-manylinux_2_17_x86_64\n")
    return [f"{SITE}/{f}" for f in files]


def test_a_manylinux_distribution_loads_nothing_on_musl_not_even_its_vendored_libraries(tmp_path: Path,
                                                                                        extension: Path) -> None:
    umath, pcg64, gfortran = numpy_tree(tmp_path, extension, with_python=False)
    found = python.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    [choice] = found.choices[package_key(package)]
    assert choice.selected is None and choice.fallback is None
    assert "_multiarray_umath.cpython-311-x86_64-linux-gnu.so, _pcg64.cpython-311-x86_64-linux-gnu.so are never " \
           "imported" in choice.how
    assert set(found.unused) == {umath, pcg64, gfortran}
    assert found.unused[gfortran] == "loaded only by numpy's extension modules, which CPython 3.11 on musl never " \
                                     "imports"


def test_a_pure_python_module_beside_each_compiled_one_is_the_fallback(tmp_path: Path, extension: Path) -> None:
    numpy_tree(tmp_path, extension, with_python=True)
    found = python.identify(DirectoryRoot(tmp_path), elves_of(tmp_path))
    [package] = found.packages
    [choice] = found.choices[package_key(package)]
    assert choice.selected is None
    assert choice.fallback == ("CPython imports the pure-Python _multiarray_umath.py, _pcg64/__init__.py beside them "
                               "instead")
    assert choice.lost is not None and "_pcg64.cpython-311-x86_64-linux-gnu.so" in choice.lost


def test_a_wheel_file_scanned_directly_gets_the_same_rule() -> None:
    location = "/app/wheels/orjson-3.9.10-cp311-cp311-manylinux_2_17_x86_64.whl"
    members = {"orjson-3.9.10.dist-info/WHEEL": MANYLINUX_WHEEL.encode(),
               "orjson-3.9.10.dist-info/METADATA": b"Name: orjson\nVersion: 3.9.10\n",
               "orjson-3.9.10.dist-info/RECORD": b"orjson/orjson.cpython-311-x86_64-linux-gnu.so,,\n"
                                                 b"orjson/__init__.py,,\n"}
    module = Native(f"{location}!/orjson/orjson.cpython-311-x86_64-linux-gnu.so",
                    "orjson/orjson.cpython-311-x86_64-linux-gnu.so", "x86_64", Flavour.GLIBC)
    abi3 = Native(f"{location}!/orjson/_extra.abi3.so", "orjson/_extra.abi3.so", "x86_64", Flavour.GLIBC)
    [detector] = [d for d in registry.detectors() if d.name == "python"]
    assert detector.archive is not None
    found = detector.archive(ArchiveMetadata(location, members), [module, abi3], "x86_64")
    assert found is not None
    [package] = found.packages
    assert set(found.unused) == {module.path}  # the abi3 module is imported and judged
    [choice] = found.choices[package_key(package)]
    assert choice.selected is None and choice.unused == (module,)
