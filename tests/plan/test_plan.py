"""Issue 14, parts 4-6: the degraded verdict, one ranked plan that never contradicts itself, OS-package files."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from muslcheck import Verdict, scan
from muslcheck.apps.components import advice_step, os_package_steps
from muslcheck.cli import FAIL_LEVELS, exit_code
from muslcheck.judging.packages import APK_BY_SONAME, apk_for
from muslcheck.model.options import Context
from muslcheck.model.report import (
    Component,
    Ecosystem,
    FileKind,
    FixStep,
    LibraryFinding,
    Report,
    StepKind,
    file_components,
    file_steps,
    plan_of,
)
from muslcheck.render import render_dockerfile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "apps"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "render"))
from test_java_components import pom, zip_bytes

from tests.render.fixed_report import file_report, fixed_report, symbol

ABS64 = "reloc-abs64/app/lib/libabs64.so"  # fails to load on musl: an absolute relocation to a glibc-only function


def jar_component(samples_dir: Path, tmp_path: Path, artifact: str, group: str, member: str) -> Component:
    jar = zip_bytes({**pom(group, artifact, "4.2.7.Final"), member: (samples_dir / ABS64).read_bytes()})
    (tmp_path / f"{artifact}-4.2.7.Final.jar").write_bytes(jar)
    report = scan(tmp_path, musl="1.2.5")
    return next(c for c in report.components if c.name == artifact)


def test_a_fallback_makes_the_component_degraded_and_names_what_is_lost(samples_dir: Path, tmp_path: Path) -> None:
    tls = jar_component(samples_dir, tmp_path, "netty-tcnative-boringssl-static", "io.netty",
                        "META-INF/native/libnetty_tcnative_linux_x86_64.so")
    assert tls.verdict is Verdict.DEGRADED
    assert tls.lost is not None and "BoringSSL" in tls.lost and "JDK's TLS" in tls.lost


def test_no_fallback_is_blocked(samples_dir: Path, tmp_path: Path) -> None:
    quic = jar_component(samples_dir, tmp_path, "netty-codec-native-quic", "io.netty",
                         "META-INF/native/libnetty_quiche42_linux_x86_64.so")
    assert quic.verdict is Verdict.BLOCKED
    assert quic.lost is None


def test_fail_on_order_is_native_packages_gcompat_degraded_blocked() -> None:
    assert [v.value for v in FAIL_LEVELS] == ["native", "needs-packages", "needs-gcompat", "degraded", "blocked"]
    assert [v.severity for v in FAIL_LEVELS] == sorted({v.severity for v in FAIL_LEVELS})
    base = fixed_report()
    degraded = Component("lz4-java", "1.8.0", Ecosystem.MAVEN, "/app/lz4.jar", Verdict.DEGRADED, (), {}, None,
                         id="maven:lz4-java:/app/lz4.jar", lost="the native LZ4 codec")
    report = replace(base, components=(degraded,), skipped=())
    assert exit_code(report, Verdict.DEGRADED) == 1
    assert exit_code(report, Verdict.NEEDS_GCOMPAT) == 1
    assert exit_code(report, Verdict.BLOCKED) == 0
    assert "lz4-java: the native LZ4 codec" in report.plan.lost


def test_gcompat_package_covers_the_glibc_loader_name() -> None:
    """From gcompat's generated table (loader_paths, libc_links), not a hand list."""
    assert apk_for("ld-linux-x86-64.so.2") == apk_for("ld-linux-aarch64.so.1") == "gcompat"
    assert apk_for("libresolv.so.2") == "gcompat"
    lib = "/app/lib/libjni.so"
    f = file_report(lib, Verdict.NEEDS_GCOMPAT, kind=FileKind.SHARED_LIBRARY, context=Context.DLOPEN_LAZY,
                    interpreter=None, missing_libraries=(
                        LibraryFinding("ld-linux-x86-64.so.2", lib, "No such file or directory", "gcompat"),),
                    fixes=("ship a musl build of ld-linux-x86-64.so.2 (not in the tree, no Alpine package known)",))
    texts = [s.text for s in file_steps(f)]
    assert any(t.startswith("apk add gcompat") and "ld-linux-x86-64.so.2" in t for t in texts)
    assert not any("ship a musl build" in t for t in texts)


def test_a_symbol_waiting_on_a_missing_library_is_never_blamed_on_musl() -> None:
    app = "/app/bin/fetch"
    f = file_report(app, Verdict.BLOCKED, missing_libraries=(
        LibraryFinding("libcurl-gnutls.so.4", app, "No such file or directory", None),),
        unresolved_symbols=(symbol("curl_easy_init", None, app), symbol("statx", "GLIBC_2.28", app)))
    steps = file_steps(f)
    texts = [s.text for s in steps]
    assert not any("curl_easy_init" in t for t in texts)
    assert "rebuild against musl: musl does not export statx" in texts  # glibc's version: libc's symbol
    # no verified name: apk resolves the soname through its provides
    assert steps[0] == FixStep(StepKind.APK, steps[0].text, "so:libcurl-gnutls.so.4")


def test_package_names_are_names_never_free_text() -> None:
    assert all(" " not in name and "(" not in name for name in APK_BY_SONAME.values())
    assert apk_for("libexecinfo.so.1") is None  # retired after Alpine 3.16: not a package name today
    hashed = file_report("/app/x.so", Verdict.BLOCKED, missing_libraries=(
        LibraryFinding("libgcc_s-0cd532bd.so.1", "/app/x.so", "No such file or directory", None),
        LibraryFinding("libfoo.so.2", "/app/x.so", "replaced", "the Alpine package that replaces libfoo2"),))
    actions = [s.action for s in file_steps(hashed) if s.kind is StepKind.APK]
    assert actions == ["so:libfoo.so.2"]  # an auditwheel copy has no package; free text becomes so:


def test_os_packages_are_named_only_where_cited() -> None:
    curl = file_report("/usr/bin/curl", Verdict.NOT_APPLICABLE)
    steps, _ = os_package_steps("dpkg", "curl", [curl])
    assert [s.action for s in steps] == ["curl"] and "aports main/curl/APKBUILD" in steps[0].text
    tool = file_report("/usr/bin/mytool", Verdict.NOT_APPLICABLE)
    lib = replace(file_report("/usr/lib/x86_64-linux-gnu/libmy.so.3.1", Verdict.NOT_APPLICABLE,
                              kind=FileKind.SHARED_LIBRARY, interpreter=None), soname="libmy.so.3")
    steps, _ = os_package_steps("dpkg", "mytool", [tool, lib])
    assert [s.action for s in steps] == ["cmd:mytool", "so:libmy.so.3"]
    assert not any("base image" in s.text for s in steps)
    glibc, notes = os_package_steps("dpkg", "libc6", [lib])
    assert glibc == () and "musl" in notes[0]


def test_a_reinstall_comes_first_and_replaces_apk_and_gcompat_in_the_plan() -> None:
    pip = advice_step("pip install numpy==1.26.4 in the Alpine image: pip there installs the musllinux wheel")
    assert (pip.kind, pip.action) == (StepKind.REINSTALL, "pip install numpy==1.26.4")
    assert advice_step("python:3.11-alpine").kind is StepKind.BASE_IMAGE
    numpy = Component("numpy", "1.26.4", Ecosystem.PYPI,
                      "/app/venv/lib/python3.11/site-packages/numpy-1.26.4.dist-info",
                      Verdict.BLOCKED, (), {}, pip.text, steps=(pip,), fixes=(pip.text,))
    fortify = file_components((file_report("/opt/fortify", Verdict.NEEDS_GCOMPAT, unresolved_symbols=(
        symbol("__memcpy_chk", "GLIBC_2.3.4", "/opt/fortify", gcompat=True),)),))
    plan = plan_of((numpy, *fortify))
    assert plan.reinstall == ("pip install numpy==1.26.4",)
    assert plan.apk == ("gcompat",)  # for fortify only: numpy's fix is pip, never apk add gcompat libgcc ...
    assert [g.split(":")[0] for g in plan.gcompat] == ["fortify"]


def test_dockerfile_writes_the_plan(tmp_path: Path) -> None:
    steps = (FixStep(StepKind.BASE_IMAGE, "python:3.11-alpine", "python:3.11-alpine"),
             FixStep(StepKind.REINSTALL, "pip install orjson==3.10.7 in the Alpine image",
                     "pip install orjson==3.10.7"),
             FixStep(StepKind.REINSTALL, "x", "pip install evil;rm -rf /"))
    c = Component("orjson", "3.10.7", Ecosystem.PYPI, "/site", Verdict.BLOCKED, (), {}, None, steps=steps)
    libs = file_components((file_report("/app/lib.so", Verdict.NEEDS_PACKAGES, interpreter=None, missing_libraries=(
        LibraryFinding("libz.so.1", "/app/lib.so", "No such file or directory", "zlib"),
        LibraryFinding("libsnappy.so.1", "/app/lib.so", "No such file or directory", None))),))
    report: Report = replace(fixed_report(), components=(c, *libs))
    text = render_dockerfile(report)
    lines = text.splitlines()
    assert "FROM python:3.11-alpine" in lines
    assert "RUN apk add --no-cache zlib" in lines and "RUN apk add --no-cache so:libsnappy.so.1" in lines
    assert "RUN pip install orjson==3.10.7" in lines
    assert "# pip install evil;rm -rf /" in lines  # a name with shell characters never reaches a RUN line
    assert next(line for line in lines if not line.startswith("#")).startswith("FROM ")


@pytest.mark.parametrize("verdict", [Verdict.BLOCKED, Verdict.DEGRADED])
def test_blocked_and_degraded_components_say_selected_not_loads(verdict: Verdict) -> None:
    from muslcheck.render import render_table

    member = "/app/a.jar!/META-INF/native/libx.so"
    c = Component("x", "1", Ecosystem.MAVEN, "/app/a.jar", verdict, (member,), {"x86_64": member}, None,
                  lost="speed" if verdict is Verdict.DEGRADED else None)
    text = render_table(replace(fixed_report(), components=(c,)))
    assert "selected on musl (x86_64): META-INF/native/libx.so" in text
    assert "loads on musl" not in text
