#!/usr/bin/env python3
"""muslcheck's performance benchmark: builds its inputs, times muslcheck against ELF tools in the same
run, checks the targets of docs/performance.md, and writes a table (Markdown + JSON).

    python3 benchmarks/run.py                 # full run (about 25 minutes on 2 cores the first time)
    python3 benchmarks/run.py --quick         # 2 runs per case, no 10,000-file growth point, a smaller fleet
    python3 benchmarks/run.py --update-docs   # also rewrite the results of docs/performance.md

Inputs are built under --cache-dir (default ~/.cache/muslcheck-bench), never in the repository, and
removed at the end unless --keep. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

# benchmarks/ is on sys.path as the script's folder
from dask_cluster import dask_installed, local_cluster
from fleet import AppLayer, BaseLayer, build_fleet, write_oci_layout
from inputs import Inputs, build_big_image, build_growth_tree, build_inputs, build_top_layer, layer_digests
from measure import Launcher, Result, measure
from peak_rss import measure as measure_all_processes

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DOCS = REPO / "docs" / "performance.md"
DOCS_PNG = REPO / "docs" / "performance-growth.png"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
MUSL = "1.2.5"
GROWTH_SIZES = (10, 100, 1_000, 10_000)
# Issue 17's fleet: images on one base, each with its own app layers; --quick builds a smaller one.
FLEET_IMAGES, FLEET_IMAGES_QUICK, FLEET_LAYERS = 50, 10, 10
# The fleet on Dask and in one process: the first images of that fleet (50 at -j 1 would take minutes more).
DASK_IMAGES, DASK_IMAGES_QUICK, DASK_WORKERS = 10, 4, 2
VENV_PACKAGES = ("auditwheel", "matplotlib")

_t0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _t0:6.0f}s] {message}", file=sys.stderr, flush=True)


# --- the machine and the tools -------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, kernel, distribution and load, from /proc and /etc."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    distro = ""
    if Path("/etc/os-release").exists():
        m = re.search(r'^PRETTY_NAME="?([^"\n]*)', Path("/etc/os-release").read_text(), re.M)
        distro = m.group(1) if m else ""
    return {
        "cpu": cpu, "cores": len(os.sched_getaffinity(0)), "ram_gb": round(mem_kb * 1024 / 1e9, 1),
        "kernel": platform.release(), "distro": distro, "load_at_start": os.getloadavg()[0],
    }  # fmt: skip


def first_line(argv: Sequence[str], env: dict[str, str] | None = None) -> str:
    """The first non-empty output line of a version command, or "not installed"."""
    if shutil.which(argv[0]) is None and not Path(argv[0]).exists():
        return "not installed"
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"
    lines = [ln.strip() for ln in (proc.stdout + "\n" + proc.stderr).splitlines() if ln.strip()]
    return lines[0] if lines else f"unknown (exit {proc.returncode})"


def dpkg_version(package: str) -> str:
    proc = (
        subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
        if shutil.which("dpkg-query")
        else None
    )
    return proc.stdout.strip() if proc and proc.returncode == 0 else "unknown"


def python_module_version(python: str, module: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({module!r}))"
    try:
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except OSError:
        return "not installed"
    return proc.stdout.strip() if proc.returncode == 0 else "not installed"


def is_python_script(path: str | None) -> bool:
    if not path:
        return False
    with open(path, "rb") as f:
        head = f.readline()
    return head.startswith(b"#!") and b"python" in head


def ensure_venv(cache: Path) -> Path | None:
    """A venv under the cache with auditwheel and matplotlib (neither is a muslcheck dependency)."""
    venv = cache / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        log(f"creating {venv} with {', '.join(VENV_PACKAGES)}")
        if subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True).returncode != 0:
            return None
    missing = [p for p in VENV_PACKAGES if python_module_version(str(python), p) == "not installed"]
    if missing:
        proc = subprocess.run([str(python), "-m", "pip", "install", "-q", *missing], capture_output=True, text=True)
        if proc.returncode != 0:
            log(f"pip install {' '.join(missing)} failed: {proc.stderr.strip()[-300:]}")
    return python


# --- the benchmark ------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, venv_python: Path | None, launcher: Launcher) -> None:
        self.args, self.work, self.venv_python, self.launcher = args, work, venv_python, launcher
        self.results: dict[str, Result] = {}
        self.notes: list[str] = []
        self.input_notes: dict[str, str] = {}  # inputs built by the cases themselves, for the report
        self.checks: dict[str, Any] = {}  # what the targets need besides the timings (reports compared)
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.reports = work / "reports"
        self.reports.mkdir(exist_ok=True)
        src = Path(args.muslcheck_src).resolve()
        self.muslcheck_env = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "PYTHONPATH": os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])]),
            "MUSLCHECK_CACHE_DIR": str(work / "muslcheck-cache"),  # never the user's own report cache
            # Compiled bytecode, as an installed muslcheck has, kept in the work directory (not the checkout).
            "PYTHONPYCACHEPREFIX": str(work / "pycache"),
        }
        self.no_cache: tuple[str, ...] = ()  # ("--no-cache",) once the help shows muslcheck has a report cache
        # -P: the current directory does not go first on sys.path, so PYTHONPATH decides which muslcheck runs.
        self.muslcheck = [sys.executable, "-P", "-c", "import sys; from muslcheck.cli import main; sys.exit(main())"]
        self.src = src

    # The displayed command: placeholders instead of long paths.
    def show(self, argv: Sequence[str]) -> str:
        text = shlex.join(argv)
        text = text.replace(shlex.join(self.muslcheck), "muslcheck")
        if self.venv_python:
            text = text.replace(str(self.venv_python), "venv-python")
        text = text.replace(sys.executable, "python3")
        text = text.replace(str(HERE) + "/", "benchmarks/")
        return text.replace(str(self.work), "$WORK")

    def case(
        self,
        key: str,
        label: str,
        argv: Sequence[str],
        *,
        needs: Sequence[str] = (),
        ok_codes: Sequence[int] = (0,),
        warm: Sequence[Path] = (),
        env: dict[str, str] | None = None,
        runs: int | None = None,
        before_each: Callable[[], None] | None = None,
    ) -> Result:
        """Time one command (a median of up to --runs whole-process runs) unless a tool it needs is absent."""
        result = Result(key, label, self.show(argv))
        self.results[key] = result
        absent = [t for t in needs if shutil.which(t) is None and not Path(t).exists()]
        if absent:
            result.status, result.note = "not installed", f"{', '.join(absent)} not installed"
            log(f"{label}: {result.note}")
            return result
        log(f"{label}: {result.command}")
        measure(
            self.launcher,
            result,
            argv,
            runs=runs or self.args.runs,
            budget_s=self.args.budget,
            ok_codes=ok_codes,
            env=env,
            warm_paths=warm,
            stderr_to=self.logs / f"{key}.err",
            before_each=before_each,
        )
        if result.ok:
            log(f"  median {result.wall_s:.3f} s over {len(result.runs)} run(s), peak RSS {result.max_rss_mb:.0f} MB")
        else:
            log(f"  {result.status}: {result.note}")
        return result

    def skip(self, key: str, label: str, why: str) -> Result:
        result = Result(key, label, "", status="skipped", note=why)
        self.results[key] = result
        log(f"{label}: skipped ({why})")
        return result

    def muslcheck_scan(self, key: str, label: str, target: str | Sequence[str], warm: Sequence[Path], *extra: str,
                       cached: bool = False, before_each: Callable[[], None] | None = None,
                       runs: int | None = None) -> Result:
        """``muslcheck scan TARGET --musl 1.2.5 -o json=FILE``, end to end; the report is checked afterwards
        (a fleet's: every target scanned). ``target`` may be several arguments (``--targets FILE``). Every run
        scans, unless ``cached``: the report cache would answer the runs after the first."""
        report = self.reports / f"{key}.json"
        argv = [*self.muslcheck, "scan", *([target] if isinstance(target, str) else target), "--musl", MUSL,
                "-o", f"json={report}", *extra, *(() if cached else self.no_cache)]
        result = self.case(key, label, argv, ok_codes=(0, 1), warm=warm, env=self.muslcheck_env,
                           before_each=before_each, runs=runs)
        if result.ok:
            try:
                data = report.read_bytes()
                result.json_bytes = len(data)
                doc = json.loads(data)
                if "files" in doc:
                    judged = f"{len(doc['files']):,} ELF files judged"
                else:  # a fleet report
                    failed = [t for t in doc["targets"] if t["error"] is not None]
                    if failed:
                        raise ValueError(f"{len(failed)} target(s) failed, the first: {failed[0]['error']}")
                    judged = f"{len(doc['targets'])} targets scanned"
                result.note = judged + (f"; {result.note}" if result.note else "")
            except (OSError, ValueError, KeyError, TypeError) as e:
                result.status, result.note = "failed", f"no usable JSON report ({e})"
        return result

    def guarded(self, labels: Mapping[str, str], group: Callable[[], None]) -> None:
        """Run a group of cases. An exception in it (an input that cannot be built, a cluster that does not
        start) marks those of ``labels``' cases that have no result yet as failed; the other groups still run."""
        try:
            group()
        except Exception as e:  # any failure of one group is reported, never the end of the run
            why = f"{type(e).__name__}: {e}".replace("\n", " ")[:400]
            log(f"{', '.join(labels)}: stopped: {why}")
            for key, label in labels.items():
                r = self.results.get(key)
                if r is None or not r.runs:
                    self.results[key] = Result(key, label, r.command if r else "", status="failed", note=why)

    def empty_cache(self, name: str) -> tuple[Path, Callable[[], None]]:
        """A cache directory of muslcheck's under the work directory, and what empties it before each run."""
        path = self.work / "caches" / name

        def empty() -> None:
            shutil.rmtree(path, ignore_errors=True)

        return path, empty

    def bench_base(self, inp: Inputs) -> BaseLayer:
        """The benchmark image's one gzip layer, as the base of the OCI layouts built on it."""
        digest, diff_id = layer_digests(self.work, inp.layers)
        return BaseLayer(inp.layers["gzip"], digest, diff_id)

    # --- groups of cases ---

    def directory_cases(self, inp: Inputs, elf_list: Path) -> None:
        tree = inp.tree
        self.muslcheck_scan("mc_dir", "muslcheck scan (directory)", str(tree), [tree])
        self.case(
            "scanelf", "scanelf -R", ["scanelf", "-R", "-i", "-n", "-r", str(tree)], needs=["scanelf"], warm=[tree]
        )
        self.case(
            "readelf",
            "readelf, one process per ELF file",
            ["xargs", "-0", "-n1", "-a", str(elf_list), "readelf", "--dyn-syms", "-d", "-l"],
            needs=["readelf", "xargs"],
            warm=[tree],
        )
        lddtree = shutil.which("lddtree")
        label = "pax-utils lddtree (Python)" if lddtree and is_python_script(lddtree) else "pax-utils lddtree"
        self.case(
            "lddtree",
            label,
            ["xargs", "-0", "-a", str(elf_list), "lddtree", "--skip-non-elfs", "-l"],
            needs=["lddtree", "xargs"],
            warm=[tree],
        )
        readers = str(HERE / "readers.py")
        if self.venv_python and python_module_version(str(self.venv_python), "auditwheel") != "not installed":
            self.case(
                "auditwheel",
                "auditwheel lddtree, one process",
                [str(self.venv_python), readers, "auditwheel", str(elf_list)],
                warm=[tree],
            )
        else:
            self.results["auditwheel"] = Result(
                "auditwheel",
                "auditwheel lddtree, one process",
                "",
                status="not installed",
                note="auditwheel could not be installed",
            )
        for module in ("pyelftools", "lief"):
            label = f"{module} symbol extraction, one process"
            if python_module_version(sys.executable, module) == "not installed":
                self.results[module] = Result(
                    module, label, "", status="not installed", note=f"{module} not installed for {sys.executable}"
                )
                continue
            self.case(module, label, [sys.executable, readers, module, str(elf_list)], warm=[tree])

    def image_cases(self, inp: Inputs) -> None:
        for comp in ("none", "gzip", "zstd"):
            archive = inp.archives[comp]
            what = {"none": "uncompressed", "gzip": "gzip layer", "zstd": "zstd layer"}[comp]
            self.muslcheck_scan(
                f"mc_da_{comp}", f"muslcheck scan docker-archive ({what})", f"docker-archive:{archive}", [archive]
            )
        # The same image with ~3 GB more non-ELF data in its layer: peak RSS must not follow the size.
        big, note = build_big_image(self.work, inp.tree, log)
        self.input_notes["big_image"] = note
        size, extra = big.stat().st_size, big.stat().st_size - inp.archives["none"].stat().st_size
        self.muslcheck_scan(
            "mc_da_none_big",
            f"muslcheck scan docker-archive (uncompressed, {size / 1e9:.1f} GB: "
            f"+ {extra / 1e9:.1f} GB of non-ELF files)",
            f"docker-archive:{big}",
            [big],
        )
        self.case(
            "zcat",
            "zcat of the gzip layer",
            ["zcat", str(inp.layers["gzip"])],
            needs=["zcat"],
            warm=[inp.layers["gzip"]],
        )
        self.case(
            "zstd_d",
            "zstd -d of the zstd layer",
            ["zstd", "-d", "-q", "-c", str(inp.layers["zstd"])],
            needs=["zstd"],
            warm=[inp.layers["zstd"]],
        )
        self.case(
            "tar_t",
            "tar -tf of the uncompressed archive",
            ["tar", "-tf", str(inp.archives["none"])],
            needs=["tar"],
            warm=[inp.archives["none"]],
        )
        self.case(
            "tar_t_layer",
            "tar -tf of the uncompressed layer",
            ["tar", "-tf", str(inp.layers["none"])],
            needs=["tar"],
            warm=[inp.layers["none"]],
        )
        self.case(
            "cat",
            "cat of the uncompressed archive",
            ["cat", str(inp.archives["none"])],
            needs=["cat"],
            warm=[inp.archives["none"]],
        )

    def jar_cases(self, inp: Inputs) -> None:
        self.muslcheck_scan("mc_jar", "muslcheck scan (fat JAR)", str(inp.jar), [inp.jar])
        self.case(
            "unzip_t", "unzip -t of the fat JAR", ["unzip", "-tqq", str(inp.jar)], needs=["unzip"], warm=[inp.jar]
        )

    def scaling_cases(self, inp: Inputs, scan_help: str) -> None:
        option = next((o for o in ("--jobs", "--workers", "--processes") if o in scan_help), None)
        if option is None:
            why = "`muslcheck scan --help` offers no --jobs option"
            self.skip("mc_jobs1", "muslcheck scan (directory), 1 process", why)
            self.skip("mc_jobs2", "muslcheck scan (directory), 2 processes", why)
            self.notes.append(f"Scaling with 1 and 2 processes: skipped, {why} (checked at run time).")
            return
        for n in (1, 2):
            self.muslcheck_scan(
                f"mc_jobs{n}", f"muslcheck scan (directory), {option} {n}", str(inp.tree), [inp.tree], option, str(n)
            )

    def cache_cases(self, inp: Inputs, scan_help: str) -> None:
        """A second scan with muslcheck's cache against the first, when muslcheck has a cache."""
        key_first, key_second = "mc_cache_first", "mc_cache_second"
        if "--cache-dir" in scan_help:
            cache_dir = self.work / "muslcheck-cache"
            shutil.rmtree(cache_dir, ignore_errors=True)
            self.muslcheck_scan(
                key_first,
                "muslcheck scan (directory), empty cache",
                str(inp.tree),
                [inp.tree],
                "--cache-dir",
                str(cache_dir),
            )
            # Only the first run met an empty cache: take that one.
            first = self.results[key_first]
            first.runs = first.runs[:1]
            self.muslcheck_scan(
                key_second,
                "muslcheck scan (directory), cache filled",
                str(inp.tree),
                [inp.tree],
                "--cache-dir",
                str(cache_dir),
            )
        elif "--no-cache" in scan_help:
            gzip_image = inp.archives["gzip"]
            for what, target, warm in (("directory", str(inp.tree), inp.tree),
                                       ("docker-archive, gzip layer", f"docker-archive:{gzip_image}", gzip_image)):
                suffix = "" if what == "directory" else "_image"
                self.muslcheck_scan(f"{key_first}{suffix}", f"muslcheck scan ({what}), --no-cache", target, [warm])
                self.muslcheck_scan(f"{key_second}{suffix}", f"muslcheck scan ({what}), cache filled", target,
                                    [warm], cached=True)
            self.rescan_case(inp)
        else:
            why = "`muslcheck scan --help` offers no --cache-dir/--no-cache option"
            self.skip(key_first, "muslcheck scan, first (cache)", why)
            self.skip(key_second, "muslcheck scan, second (cache)", why)
            self.notes.append(f"Second scan with a cache: not available, {why} (checked at run time).")

    def rescan_case(self, inp: Inputs) -> None:
        """A directory scanned again with its cache after one library changed: a copy of the tree (hard links,
        so nothing of the original changes: the library is replaced by rename), one library that other files
        load rewritten before each run (one byte more or less: still the same ELF file), 2.1 s before the scan
        (a file changed in the last 2 s is never trusted by its stat identity)."""
        copy = self.work / "rescan-tree"
        shutil.rmtree(copy, ignore_errors=True)
        subprocess.run(["cp", "-al", str(inp.tree), str(copy)], check=True)
        changed = next((p for p in sorted(copy.rglob("libjava.so")) if p.is_file()), None)
        if changed is None:
            self.skip("mc_rescan", "muslcheck scan (directory), one library changed", "no libjava.so in the tree")
            return
        original = changed.read_bytes()
        flip = [False]

        def change_one() -> None:
            flip[0] = not flip[0]
            fresh = changed.with_name(changed.name + ".new")
            fresh.write_bytes(original + (b"\0" if flip[0] else b""))
            os.replace(fresh, changed)
            time.sleep(2.1)

        self.input_notes["rescan"] = f"rescan: {changed.relative_to(copy)} rewritten before each run"
        time.sleep(2.1)
        self.muslcheck_scan("mc_rescan_fill", "muslcheck scan (directory copy), cache filled first", str(copy),
                            [copy], cached=True)
        self.results["mc_rescan_fill"].runs = self.results["mc_rescan_fill"].runs[:1]
        self.muslcheck_scan("mc_rescan", "muslcheck scan (directory), one library changed since", str(copy), [copy],
                            cached=True, before_each=change_one)

    # --- issue 17: a rebuilt image, a fleet, a fleet on Dask ---

    REBUILT: ClassVar[dict[str, str]] = {
        "mc_rebuilt_cold": "muslcheck scan oci-dir (the benchmark image), --no-cache",
        "mc_rebuilt_layer": "muslcheck scan (directory of the new top layer's files only), --no-cache",
        "mc_rebuilt": "muslcheck scan oci-dir (rebuilt: + a new top layer), after the original into the same cache",
        "mc_rebuilt_nocache": "muslcheck scan oci-dir (rebuilt), --no-cache (its report is the reference)",
    }

    def rebuilt_image_cases(self, inp: Inputs) -> None:
        """The benchmark image (its one gzip layer, as an OCI layout) and the same image rebuilt with a new ~5 MB
        top layer. Before each timed run of the rebuilt one, untimed: an empty cache, and the original scanned
        into it. Its report must equal the rebuilt image's --no-cache report."""
        labels = self.REBUILT
        top = build_top_layer(self.work, inp.tree, inp.elf_files, log)
        base = self.bench_base(inp)
        original, rebuilt = self.work / "rebuilt" / "original", self.work / "rebuilt" / "rebuilt"
        write_oci_layout(original, base, [])
        write_oci_layout(rebuilt, base, [AppLayer(top.blob.read_bytes(), top.diff_id)])
        self.input_notes["rebuilt_image"] = (
            f"rebuilt image: OCI layouts of the docker-archive's gzip layer, and of it plus a new top layer "
            f"({top.note})"
        )
        blobs = [base.blob, top.blob]
        self.muslcheck_scan("mc_rebuilt_cold", labels["mc_rebuilt_cold"], f"oci-dir:{original}", blobs)
        self.muslcheck_scan("mc_rebuilt_layer", labels["mc_rebuilt_layer"], str(top.files), [top.files])
        cache, empty = self.empty_cache("rebuilt")
        fill = [*self.muslcheck, "scan", f"oci-dir:{original}", "--musl", MUSL, "-q", "--cache", str(cache),
                "-o", f"json={self.reports / 'mc_rebuilt_original.json'}"]

        def original_scanned_first() -> None:
            empty()
            proc = subprocess.run(fill, env=self.muslcheck_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
            if proc.returncode not in (0, 1):
                raise RuntimeError(f"the original image's scan into the cache failed: {proc.stderr.strip()[-300:]}")

        self.muslcheck_scan("mc_rebuilt", labels["mc_rebuilt"], f"oci-dir:{rebuilt}", blobs, "--cache", str(cache),
                            cached=True, before_each=original_scanned_first)
        reference = self.muslcheck_scan("mc_rebuilt_nocache", labels["mc_rebuilt_nocache"], f"oci-dir:{rebuilt}",
                                        blobs, runs=1)
        warm = self.results["mc_rebuilt"]
        if warm.ok and reference.ok:
            same = (self.reports / "mc_rebuilt.json").read_bytes() == (
                self.reports / "mc_rebuilt_nocache.json"
            ).read_bytes()
            self.checks["rebuilt_report_identical"] = same
            warm.note += "; report identical to the --no-cache scan's" if same else "; **report differs** from it"

    def fleet_labels(self, images: int) -> dict[str, str]:
        return {
            "mc_fleet": f"muslcheck scan --targets: a fleet of {images} images on one base, {FLEET_LAYERS} app layers "
            "each, empty cache",
            "mc_fleet_distinct": f"muslcheck scan oci-dir: every distinct layer once (the base and "
            f"{images * FLEET_LAYERS} app layers in one image), empty cache",
        }

    def fleet_cases(self, inp: Inputs, images: int) -> None:
        """benchmarks/fleet.py's fleet (on the benchmark image's gzip layer) against every distinct layer once,
        each run with an empty cache directory and the default --jobs."""
        labels = self.fleet_labels(images)
        base = self.bench_base(inp)
        log(f"building the fleet: {images} OCI layouts, {FLEET_LAYERS} app layers each")
        fleet = build_fleet(inp.tree, self.work / "fleet", images, FLEET_LAYERS, base)
        self.input_notes["fleet"] = (
            f"fleet: {images} OCI layouts on the docker-archive's gzip layer (one blob, hard-linked), each with "
            f"{FLEET_LAYERS} app layers of two of the tree's ELF files (benchmarks/fleet.py)"
        )
        warm = [base.blob, fleet.targets_file]
        cache, empty = self.empty_cache("fleet")
        self.muslcheck_scan("mc_fleet", labels["mc_fleet"], ["--targets", str(fleet.targets_file)], warm,
                            "--cache", str(cache), cached=True, before_each=empty)
        cache, empty = self.empty_cache("fleet-distinct")
        self.muslcheck_scan("mc_fleet_distinct", labels["mc_fleet_distinct"], f"oci-dir:{fleet.distinct}", warm,
                            "--cache", str(cache), cached=True, before_each=empty)

    def dask_labels(self, images: int) -> dict[str, str]:
        return {
            "mc_fleet_j1": f"muslcheck scan --targets: a fleet of {images} images, -j 1 (one process), empty cache",
            "mc_fleet_dask": f"muslcheck scan --targets --dask: the same fleet on a LocalCluster of {DASK_WORKERS} "
            "worker processes (1 thread each), empty cache",
        }

    def dask_fleet_cases(self, inp: Inputs, fleet_images: int, images: int) -> None:
        """The fleet's first ``images`` images in one process (-j 1) and on a real dask.distributed LocalCluster
        the benchmark starts (``--dask tcp://...``); their fleet reports must be identical."""
        labels = self.dask_labels(images)
        if not dask_installed(self.muslcheck_env):
            why = "dask.distributed is not installed (muslcheck's `fleet` extra: pip install 'muslcheck[fleet]')"
            for key, label in labels.items():
                self.skip(key, label, why)
            return
        fleet = build_fleet(inp.tree, self.work / "fleet", fleet_images, FLEET_LAYERS, self.bench_base(inp))
        images = min(images, len(fleet.images))
        subset = self.work / "fleet" / f"targets-first-{images}.txt"
        subset.write_text("".join(f"oci-dir:{layout}\n" for layout in fleet.images[:images]))
        warm = [self.bench_base(inp).blob, subset]
        cache, empty = self.empty_cache("fleet-j1")
        self.muslcheck_scan("mc_fleet_j1", labels["mc_fleet_j1"], ["--targets", str(subset)], warm, "-j", "1",
                            "--cache", str(cache), cached=True, before_each=empty)
        log(f"starting a dask.distributed LocalCluster ({DASK_WORKERS} worker processes)")
        with local_cluster(self.muslcheck_env, self.logs / "dask-cluster.err", DASK_WORKERS) as address:
            cache, empty = self.empty_cache("fleet-dask")
            self.muslcheck_scan("mc_fleet_dask", labels["mc_fleet_dask"], ["--targets", str(subset)], warm,
                                "--dask", address, "--cache", str(cache), cached=True, before_each=empty)
        one, dask = self.results["mc_fleet_j1"], self.results["mc_fleet_dask"]
        if one.ok and dask.ok:
            difference = fleet_report_difference(self.reports / "mc_fleet_j1.json", self.reports / "mc_fleet_dask.json")
            self.checks["dask_report_difference"] = difference or ""
            dask.note += f"; **report differs** from -j 1: {difference}" if difference else "; report identical to -j 1"

    def growth_cases(self, inp: Inputs, sizes: Sequence[int]) -> dict[str, Any]:
        """muslcheck and scanelf over trees of N ELF files; a linear fit of time and peak RSS against N."""
        series: dict[str, dict[str, Any]] = {
            "muslcheck": {"wall_s": [], "rss_mb": [], "all_rss_mb": [], "all_pss_mb": []},
            "scanelf": {"wall_s": [], "rss_mb": []},
        }
        for n in sizes:
            tree = build_growth_tree(self.work, inp.tree, inp.elf_files, n, log)
            mc = self.muslcheck_scan(f"growth_mc_{n}", f"growth: muslcheck scan, {n:,} ELF files", str(tree), [tree])
            # Issue 17 counts every process: the parent and its workers, summed while they run (ru_maxrss is the
            # largest one's), in one more run sampled from /proc.
            report = self.reports / f"growth_mc_{n}_all.json"
            argv = [*self.muslcheck, "scan", str(tree), "--musl", MUSL, "-o", f"json={report}", *self.no_cache]
            everything = measure_all_processes(argv, env=self.muslcheck_env) if mc.ok else None
            se = self.case(
                f"growth_scanelf_{n}",
                f"growth: scanelf -R, {n:,} ELF files",
                ["scanelf", "-R", "-i", "-n", "-r", str(tree)],
                needs=["scanelf"],
                warm=[tree],
            )
            for name, r in (("muslcheck", mc), ("scanelf", se)):
                series[name]["wall_s"].append(r.wall_s)
                series[name]["rss_mb"].append(r.max_rss_mb)
            series["muslcheck"]["all_rss_mb"].append(everything.sum_peak_mb if everything else None)
            series["muslcheck"]["all_pss_mb"].append(everything.pss_peak_mb if everything else None)
        out: dict[str, Any] = {"sizes": list(sizes), "series": series}
        for s in series.values():
            s["fit_wall"] = linear_fit(sizes, s["wall_s"])
            s["fit_rss"] = linear_fit(sizes, s["rss_mb"])
            if "all_rss_mb" in s:
                s["fit_all_rss"] = linear_fit(sizes, s["all_rss_mb"])
        return out


# Fields of a fleet report that may differ between two runs of the same fleet (none so far: the report keeps
# no timing and no host); removed before the reports are compared.
FLEET_VOLATILE = frozenset({"seconds", "elapsed", "duration", "host", "hostname", "worker"})


def fleet_report_difference(a: Path, b: Path) -> str | None:
    """None when the two fleet JSON reports are identical once ``FLEET_VOLATILE`` fields are removed, else where
    they first differ."""
    if a.read_bytes() == b.read_bytes():
        return None

    def stable(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: stable(v) for k, v in value.items() if k not in FLEET_VOLATILE}
        if isinstance(value, list):
            return [stable(v) for v in value]
        return value

    def first_difference(x: Any, y: Any, where: str) -> str | None:
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                found = first_difference(x.get(k), y.get(k), f"{where}.{k}")
                if found:
                    return found
            return None
        if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
            for i, (u, v) in enumerate(zip(x, y, strict=True)):
                found = first_difference(u, v, f"{where}[{i}]")
                if found:
                    return found
            return None
        return None if x == y else f"{where}: {json.dumps(x)[:120]} against {json.dumps(y)[:120]}"

    return first_difference(stable(json.loads(a.read_bytes())), stable(json.loads(b.read_bytes())), "report")


def linear_fit(xs: Sequence[float], ys: Sequence[float | None]) -> dict[str, float | None]:
    """Least-squares y = a + b·x and its R² (None with fewer than 3 points)."""
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    if len(pts) < 3:
        return {"intercept": None, "slope": None, "r2": None}
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_res = sum((y - intercept - slope * x) ** 2 for x, y in pts)
    ss_tot = sum((y - my) ** 2 for _, y in pts)
    return {"intercept": intercept, "slope": slope, "r2": 1 - ss_res / ss_tot if ss_tot else 1.0}


# --- targets and the report ---------------------------------------------------------------------------


def targets(results: dict[str, Result], measured: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Each target of docs/performance.md and of issue 17: what was measured and whether it is met. ``measured``
    holds what is not a timed case: ``growth`` (growth_cases' series) and the reports compared (Bench.checks)."""
    measured = measured or {}

    def why_missing(*keys: str) -> str:
        return _why_missing(results, *keys)

    def ratio(
        num: str, den: str, limit: float, text: str, *, at_least: bool = False, of: str = "wall"
    ) -> dict[str, Any]:
        """wall(num) / wall(den), or with ``of="rss"`` the ratio of their peak RSS, against ``limit``."""
        missing = why_missing(num, den)
        if missing:
            return {"target": text, "measured": missing, "met": None}
        a, b = ((results[k].wall_s if of == "wall" else results[k].max_rss_mb) for k in (num, den))
        assert a is not None and b is not None  # both ok
        value = a / b
        met = value >= limit if at_least else value <= limit
        if of == "wall":
            measured = f"{value:.2f}x ({results[num].label} / {results[den].label})"
        else:
            measured = f"{value:.2f}x ({a:.0f} MB / {b:.0f} MB)"
        return {"target": text, "measured": measured, "value": value, "met": met}

    out: list[dict[str, Any]] = []
    missing = why_missing("mc_dir")
    if missing:
        out.append({"target": "directory scan ≤ 1.0 s", "measured": missing, "met": None})
    else:
        cold = results["mc_dir"].wall_s
        assert cold is not None  # ok
        out.append({"target": "directory scan ≤ 1.0 s", "measured": f"{cold:.2f} s", "value": cold, "met": cold <= 1.0})
    out.append(ratio("mc_dir", "scanelf", 20, "directory scan ≤ 20x scanelf -R"))
    out.append(ratio("lddtree", "mc_dir", 30, "≥ 30x faster than pax-utils lddtree", at_least=True))
    out.append(ratio("auditwheel", "mc_dir", 30, "≥ 30x faster than auditwheel lddtree", at_least=True))
    if missing:
        out.append({"target": "directory scan peak RSS ≤ 150 MB", "measured": missing, "met": None})
    else:
        rss = results["mc_dir"].max_rss_mb
        assert rss is not None  # ok
        out.append(
            {"target": "directory scan peak RSS ≤ 150 MB", "measured": f"{rss:.0f} MB", "value": rss, "met": rss <= 150}
        )
    out.append(ratio("mc_da_none", "mc_dir", 1.5, "docker-archive ≤ 1.5x the directory scan"))
    out.append(
        ratio("mc_da_none_big", "mc_da_none", 1.1, "peak RSS of the 4 GB image ≤ 1.1x that of the 1 GB image", of="rss")
    )
    out.append(ratio("mc_da_gzip", "zcat", 1.2, "gzip-layer docker-archive ≤ 1.2x zcat"))
    out.append(ratio("mc_da_zstd", "zstd_d", 1.2, "zstd-layer docker-archive ≤ 1.2x zstd -d"))
    out.append(ratio("mc_jar", "unzip_t", 2.0, "fat JAR ≤ 2x unzip -t"))
    out.append(ratio("mc_jobs1", "mc_jobs2", 1.5, "2 processes ≥ 1.5x faster than 1", at_least=True))
    out.append(ratio("mc_cache_second", "mc_cache_first", 0.10, "second scan with cache ≤ 10% of the first"))
    out.append(ratio("mc_cache_second_image", "mc_cache_first_image", 0.10,
                     "second scan of an unchanged image (gzip) with cache ≤ 10% of the first"))
    out.append(ratio("mc_rescan", "mc_dir", 0.15, "directory rescan with one library changed ≤ 15% of the cold scan"))
    report = results.get("mc_dir")
    size = report.json_bytes if report is not None else None
    if size is None:
        out.append({"target": "JSON report of the 1,065-ELF tree ≤ 5 MB", "measured": "not available", "met": None})
    else:
        out.append({"target": "JSON report of the 1,065-ELF tree ≤ 5 MB", "measured": f"{size / 1e6:.1f} MB",
                    "value": size, "met": size <= 5e6})
    out.append(growth_target(measured.get("growth")))
    out.append(rebuilt_target(results, measured))
    out.append(ratio("mc_fleet", "mc_fleet_distinct", 1.5,
                     f"fleet: {FLEET_IMAGES} images sharing one base, {FLEET_LAYERS} distinct app layers each, one "
                     "machine ≤ 1.5x the time to scan the distinct layers once (fleet.py's baseline: one image "
                     "holding the base and every app layer, scanned with an empty cache)"))
    out.append(dask_target(results, measured))
    return out


def _why_missing(results: dict[str, Result], *keys: str) -> str:
    for k in keys:
        r = results.get(k)
        if r is None:
            return f"not available: {k} not run"
        if not r.ok:
            return f"not available: {r.label}: {r.note or r.status}"
    return ""


def growth_target(growth: Mapping[str, Any] | None) -> dict[str, Any]:
    """Issue 17: the 10,000-ELF growth tree's peak RSS, every process summed (peak_rss.py), ≤ 300 MB."""
    text = "10,000-ELF growth tree, peak RSS of all processes (the scan and its workers, summed) ≤ 300 MB"
    sizes = list(growth["sizes"]) if growth else []
    if 10_000 not in sizes:
        return {"target": text, "measured": "not available: no 10,000-file growth point (--quick)", "met": None}
    assert growth is not None
    value = growth["series"]["muslcheck"]["all_rss_mb"][sizes.index(10_000)]
    if value is None:
        return {"target": text, "measured": "not available: the 10,000-file scan failed", "met": None}
    return {"target": text, "measured": f"{value:.0f} MB", "value": value, "met": value <= 300}


def rebuilt_target(results: dict[str, Result], measured: Mapping[str, Any]) -> dict[str, Any]:
    """Issue 17: the rebuilt image's wall ≤ 10% of the original's cold scan + the new layer's own time."""
    text = ("the benchmark image rebuilt with a new ~5 MB top layer, scanned after the original into the same "
            "cache ≤ 10% of the original's cold scan + the new layer's own time (a --no-cache scan of a directory "
            "holding only that layer's files)")
    missing = _why_missing(results, "mc_rebuilt", "mc_rebuilt_cold", "mc_rebuilt_layer")
    if missing:
        return {"target": text, "measured": missing, "met": None}
    rebuilt, cold, own = (results[k].wall_s for k in ("mc_rebuilt", "mc_rebuilt_cold", "mc_rebuilt_layer"))
    assert rebuilt is not None and cold is not None and own is not None  # all ok
    limit = 0.10 * cold + own
    same = measured.get("rebuilt_report_identical")
    report = {True: "; report identical to the --no-cache scan's", False: "; **report differs** from the "
              "--no-cache scan's", None: "; report not compared"}[same]
    return {"target": text, "value": rebuilt / limit, "met": rebuilt <= limit and same is not False,
            "measured": f"{rebuilt:.2f} s against 0.10 x {cold:.2f} s + {own:.2f} s = {limit:.2f} s "
            f"({rebuilt / cold:.2f} of the cold scan){report}"}


def dask_target(results: dict[str, Result], measured: Mapping[str, Any]) -> dict[str, Any]:
    """Issue 17: the fleet on Dask (2 local workers) and in one process: the same report; both times stated."""
    text = (f"fleet on Dask with {DASK_WORKERS} local workers vs the same fleet in one process (-j 1): report "
            "identical; time stated")
    missing = _why_missing(results, "mc_fleet_dask", "mc_fleet_j1")
    if missing:
        return {"target": text, "measured": missing, "met": None}
    dask, one = results["mc_fleet_dask"].wall_s, results["mc_fleet_j1"].wall_s
    difference = measured.get("dask_report_difference")
    report = ("report not compared" if difference is None else
              "report identical" if not difference else f"**report differs**: {difference}")
    images = re.search(r"a fleet of (\d+) images", results["mc_fleet_j1"].label)
    return {"target": text, "value": dask, "met": None if difference is None else not difference,
            "measured": f"{report}; Dask {dask:.2f} s, one process {one:.2f} s"
            + (f" ({images.group(1)} images of the fleet)" if images else "")}


def fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def cell(text: str) -> str:
    """Text made safe for a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def results_table(results: dict[str, Result], keys: Sequence[str]) -> list[str]:
    scanelf, lddtree = results.get("scanelf"), results.get("lddtree")
    rows = [
        "| case | command | runs | wall (s), median | x scanelf | x lddtree | peak RSS (MB) | note |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]
    for key in keys:
        r = results.get(key)
        if r is None:
            continue
        w = r.wall_s
        base_scanelf = scanelf.wall_s if scanelf else None
        base_lddtree = lddtree.wall_s if lddtree else None
        vs_scanelf = w / base_scanelf if w is not None and base_scanelf else None
        vs_lddtree = w / base_lddtree if w is not None and base_lddtree else None
        note = r.note if r.ok else f"**{r.status}**" + (f": {r.note}" if r.note else "")
        command = cell(f"`{r.command}`" if r.command else "")
        rows.append(
            f"| {r.label} | {command} | {len(r.runs) or '—'} | {fmt(w, '.3f')} | "
            f"{fmt(vs_scanelf, '.1f', 'x')} | {fmt(vs_lddtree, '.3f', 'x')} | {fmt(r.max_rss_mb, '.0f')} "
            f"| {cell(note)} |"
        )
    return rows


def markdown(data: dict[str, Any], results: dict[str, Result]) -> str:
    m = data["machine"]
    s = data["settings"]
    big = data["inputs"].get("big_image")  # absent from results.json written before it existed
    big_image = f" For peak RSS against image size: {big}." if big else ""
    lines = []
    if s["quick"]:
        lines += [
            "**Preliminary: a `--quick` run** (" + f"at most {s['runs']} run(s) per case, "
            "no 10,000-file growth point) on a machine shared with other work, so the numbers are noisy. "
            "Re-run without `--quick` for the figures to rely on.",
            "",
        ]
    lines += [
        f"Run on {data['date']}: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, "
        f"{m['distro']}, Linux {m['kernel']}; 1-minute load average {m['load_at_start']:.2f} at the start, "
        f"{m['load_at_end']:.2f} at the end. Median of up to {s['runs']} whole-process run(s) per case "
        f"(fewer once a case has used {s['budget_s']:.0f} s), warm page cache; peak RSS is the largest "
        "per-run `ru_maxrss` of the process and its children (MB = 10^6 bytes). `x scanelf` and `x lddtree` "
        "are this case's wall time divided by theirs on the directory tree.",
        "",
        "Inputs: " + str(data["inputs"]["tree"]) + "." + big_image,
        "",
        "### Targets",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for t in data["targets"]:
        met = {True: "met", False: "**not met**", None: "not available"}[t["met"]]
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    lines += ["", "### Directory tree", ""]
    lines += results_table(results, ["mc_dir", "scanelf", "readelf", "lddtree", "auditwheel", "pyelftools", "lief"])
    lines += ["", "### Images", ""]
    lines += results_table(
        results,
        ["mc_da_none", "mc_da_none_big", "mc_da_gzip", "mc_da_zstd", "zcat", "zstd_d", "tar_t", "tar_t_layer", "cat"],
    )
    lines += ["", "### Fat JAR", "", f"Input: {data['inputs']['jar']}.", ""]
    lines += results_table(results, ["mc_jar", "unzip_t"])
    lines += ["", "### Processes and cache", ""]
    lines += results_table(results, ["mc_jobs1", "mc_jobs2", "mc_cache_first", "mc_cache_second",
                                     "mc_cache_first_image", "mc_cache_second_image"])
    j1, j2 = results.get("mc_jobs1"), results.get("mc_jobs2")
    w1, w2 = (j1.wall_s if j1 else None), (j2.wall_s if j2 else None)
    if w1 and w2:
        lines += [
            "",
            f"Speed-up from 1 to 2 processes: {w1 / w2:.2f}x ({w1:.3f} s with 1, {w2:.3f} s with 2; "
            f"{m['cores']} cores).",
        ]
    lines += ["", "### Issue 17: a rebuilt image and fleets", ""]
    lines += results_table(results, ["mc_rebuilt_cold", "mc_rebuilt_layer", "mc_rebuilt", "mc_rebuilt_nocache",
                                     "mc_fleet", "mc_fleet_distinct", "mc_fleet_j1", "mc_fleet_dask"])
    lines += [
        "",
        "The rebuilt image: an OCI layout of the docker-archive's gzip layer (the original) and one of that layer "
        "plus a new top layer; before each timed run of the rebuilt image, untimed, the cache directory is emptied "
        "and the original scanned into it. The new layer's own time is a `--no-cache` scan of a directory holding "
        "only that layer's files. The fleet: `benchmarks/fleet.py`'s, on the same gzip layer, against one image "
        "holding the base and every app layer (every distinct layer scanned once); both with an empty cache "
        "directory before each run and the default `--jobs`. On Dask: a `dask.distributed` LocalCluster "
        f"({DASK_WORKERS} worker processes, 1 thread each) started by the benchmark before those runs and kept "
        "across them, so its workers have imported muslcheck already (the peak RSS shown is the client's: the "
        "workers are the cluster's processes); the fleet reports of both are compared (no field of a fleet "
        "report is a time or a host).",
    ]
    g = data["growth"]
    lines += [
        "",
        "### Growth",
        "",
        "Trees of N ELF files (copies of the tree's ELF files in a fixed shuffled order; past the "
        "tree's own count they repeat under new names).",
        "",
        "| ELF files | muslcheck wall (s) | muslcheck ms per file | muslcheck peak RSS, largest process (MB) "
        "| muslcheck peak RSS, all processes (MB) | the same, PSS (MB) | scanelf wall (s) | scanelf peak RSS (MB) |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    mc, se = g["series"]["muslcheck"], g["series"]["scanelf"]
    every = mc.get("all_rss_mb") or [None] * len(g["sizes"])
    pss = mc.get("all_pss_mb") or [None] * len(g["sizes"])
    for i, n in enumerate(g["sizes"]):
        per_file = mc["wall_s"][i] * 1000 / n if mc["wall_s"][i] is not None else None
        lines.append(
            f"| {n:,} | {fmt(mc['wall_s'][i], '.3f')} | {fmt(per_file, '.2f')} | {fmt(mc['rss_mb'][i], '.0f')} | "
            f"{fmt(every[i], '.0f')} | {fmt(pss[i], '.0f')} | {fmt(se['wall_s'][i], '.3f')} | "
            f"{fmt(se['rss_mb'][i], '.0f')} |"
        )
    lines += ["", "All processes: the parent and its workers summed at each sample of `/proc` (`peak_rss.py`: one "
              "more run; a page a worker still shares with its parent counts in both, PSS splits it). This is "
              "the figure issue 17's target (10,000 ELF files ≤ 300 MB) is about."]
    lines += ["", "Linear fits (least squares over the sizes above; R² near 1 means growth in proportion to N):", ""]
    for name, series in (("muslcheck", mc), ("scanelf", se)):
        for what, key in (("wall time", "fit_wall"), ("peak RSS", "fit_rss"), ("peak RSS, all processes",
                                                                            "fit_all_rss")):
            if key not in series:
                continue
            fit = series[key]
            if fit["r2"] is None:
                lines.append(f"- {name} {what}: too few points for a linear fit.")
            elif key == "fit_wall":
                lines.append(
                    f"- {name} {what}: R² = {fit['r2']:.4f}, {fit['slope'] * 1000:.3f} ms per file, "
                    f"intercept {fit['intercept']:.3f} s."
                )
            else:
                values = [v for v in series["all_rss_mb" if key == "fit_all_rss" else "rss_mb"] if v is not None]
                flat = max(values) - min(values) <= 0.25 * max(values)
                lines.append(
                    f"- {name} {what}: R² = {fit['r2']:.4f}, {fit['slope'] * 1000:.1f} MB per 1,000 files, "
                    f"intercept {fit['intercept']:.1f} MB" + (" (flat: R² says nothing here)." if flat else ".")
                )
    if data.get("growth_png"):
        lines += ["", "![growth](performance-growth.png)"]
    lines += ["", "### Versions", ""]
    lines += [f"- {k}: {v}" for k, v in data["versions"].items()]
    if data["notes"]:
        lines += ["", "### Notes", ""] + [f"- {n}" for n in data["notes"]]
    return "\n".join(lines) + "\n"


def update_docs(text: str, png: Path | None) -> None:
    doc = DOCS.read_text()
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"{DOCS}: the markers {BEGIN} and {END} are missing")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{BEGIN}\n\n{text}\n{END}{tail}")
    if png and png.exists():
        shutil.copyfile(png, DOCS_PNG)
    log(f"rewrote the results section of {DOCS}" + (f" and {DOCS_PNG}" if png and png.exists() else ""))


def versions(bench: Bench, venv_python: Path | None) -> dict[str, str]:
    mc = first_line([*bench.muslcheck, "--version"], env=bench.muslcheck_env)
    source = f"source {bench.src}"
    if (bench.src / ".git").exists() and shutil.which("git"):
        # Read-only git commands: neither writes the index.
        git = ["git", "-C", str(bench.src)]
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        if head.returncode == 0:
            source += f", commit {head.stdout.strip()}"
            dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--"], capture_output=True).returncode
            source += " with uncommitted changes" if dirty == 1 else ""
    lddtree = shutil.which("lddtree")
    return {
        "muslcheck": f"{mc} ({source})",
        "python": sys.version.split()[0],
        "scanelf": first_line(["scanelf", "-V"]),
        "lddtree": (
            "not installed"
            if not lddtree
            else f"pax-utils {dpkg_version('pax-utils')}"
            + (" (a Python script, pyelftools)" if is_python_script(lddtree) else "")
        ),
        "readelf": first_line(["readelf", "--version"]),
        "auditwheel": python_module_version(str(venv_python), "auditwheel") if venv_python else "not installed",
        "pyelftools": python_module_version(sys.executable, "pyelftools"),
        "lief": python_module_version(sys.executable, "lief"),
        "gzip": first_line(["gzip", "--version"]),
        "zstd": first_line(["zstd", "--version"]),
        "tar": first_line(["tar", "--version"]),
        "unzip": first_line(["unzip", "-v"]),
        "matplotlib": python_module_version(str(venv_python), "matplotlib") if venv_python else "not installed",
    }


# --- main ---------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, help="whole-process runs per case, median taken (default 5; 2 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help=f"few runs, no 10,000-file growth point, a fleet of {FLEET_IMAGES_QUICK} images "
                   f"({DASK_IMAGES_QUICK} on Dask)")
    p.add_argument(
        "--from-json",
        type=Path,
        metavar="RESULTS_JSON",
        help="measure nothing: rebuild the report (and, with --update-docs, the docs) from an earlier results.json",
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the built inputs in --cache-dir/work (a later run reuses them)"
    )
    p.add_argument(
        "--out", type=Path, help="where results.md, results.json and growth.png go (default: --cache-dir/results)"
    )
    p.add_argument(
        "--update-docs",
        action="store_true",
        help="rewrite the results section of docs/performance.md and docs/performance-growth.png",
    )
    p.add_argument(
        "--budget",
        type=float,
        help="stop repeating a case once its runs took this many seconds (default 45; 20 with --quick)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "muslcheck-bench",
        help="downloads, the bench venv and the built inputs",
    )
    p.add_argument(
        "--muslcheck-src", type=Path, default=REPO, help="the muslcheck source tree to time (default: this checkout)"
    )
    args = p.parse_args()
    args.runs = args.runs or (2 if args.quick else 5)
    args.budget = args.budget or (20.0 if args.quick else 45.0)
    args.out = (args.out or args.cache_dir / "results").resolve()
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def write_report(data: dict[str, Any], results: dict[str, Result], out: Path, venv_python: Path | None) -> Path | None:
    """results.json, growth.png (when matplotlib is there) and results.md in ``out``; prints the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    data["results"] = [r.as_json() for r in results.values()]
    (out / "results.json").write_text(json.dumps(data, indent=1, default=str))
    png = out / "growth.png"
    plotted = (
        venv_python is not None
        and subprocess.run(
            [str(venv_python), str(HERE / "plot_growth.py"), str(out / "results.json"), str(png)], capture_output=True
        ).returncode
        == 0
    )
    if not plotted and "matplotlib is not available: no growth figure." not in data["notes"]:
        data["notes"].append("matplotlib is not available: no growth figure.")
    data["growth_png"] = plotted
    text = markdown(data, results)
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps(data, indent=1, default=str))
    print(text)
    for name, series in data["growth"]["series"].items():
        fit = series["fit_wall"]
        if fit["r2"] is not None:
            print(f"growth linear fit, {name} wall time: R² = {fit['r2']:.4f}")
    log(f"wrote {out / 'results.md'}, {out / 'results.json'}" + (f", {png}" if plotted else ""))
    return png if plotted else None


def main() -> int:
    args = parse_args()
    if args.from_json:
        earlier: dict[str, Any] = json.loads(args.from_json.read_text())
        results = {doc["key"]: Result.from_json(doc) for doc in earlier["results"]}
        earlier["targets"] = targets(results, {"growth": earlier.get("growth"), **earlier.get("checks", {})})
        python = args.cache_dir / "venv" / "bin" / "python"
        png = write_report(earlier, results, args.out, python if python.exists() else None)
        if args.update_docs:
            update_docs(markdown(earlier, results), png)
        return 0
    cache = args.cache_dir.resolve()
    if cache == REPO or REPO in cache.parents:
        raise SystemExit("--cache-dir must be outside the repository")
    work = cache / "work"
    data: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }
    venv_python = ensure_venv(cache)
    launcher = Launcher(cache)
    bench = Bench(args, work, venv_python, launcher)
    if launcher.kind != "C":
        bench.notes.append(
            f"No C compiler: commands were launched from a Python process, so a peak RSS below "
            f"{launcher.floor_mb:.0f} MB is that launcher's."
        )
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(bench.src / "muslcheck")], env=bench.muslcheck_env,
                   check=True)
    probe = subprocess.run(
        [sys.executable, "-P", "-c", "import muslcheck.cli, muslcheck; print(muslcheck.__file__)"],
        env=bench.muslcheck_env,
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        raise SystemExit(f"muslcheck from {bench.src} does not start:\n{probe.stderr[-2000:]}")
    if not Path(probe.stdout.strip()).resolve().is_relative_to(bench.src):
        raise SystemExit(f"python3 imports muslcheck from {probe.stdout.strip()}, not from {bench.src}")
    scan_help = subprocess.run(
        [*bench.muslcheck, "scan", "--help"], env=bench.muslcheck_env, capture_output=True, text=True
    ).stdout
    if "--no-cache" in scan_help:
        bench.no_cache = ("--no-cache",)
    if "--jobs" in scan_help:
        bench.notes.append(
            f"muslcheck runs with its default --jobs 0: one worker per CPU ({data['machine']['cores']} here), "
            "except in the --jobs 1 and --jobs 2 cases. Its peak RSS is that of its largest process (the main "
            "one or a worker): `ru_maxrss` from `wait4` is a maximum over the processes, not their sum."
        )

    log(f"building the inputs under {work}")
    inp = build_inputs(work, cache, log)
    log(f"tree: {len(inp.elf_files):,} ELF files, {inp.elf_bytes / 1e6:.0f} MB of ELF; {inp.tree_note}")
    names = {"none": "uncompressed", "gzip": "gzip", "zstd": "zstd"}
    archives = ", ".join(f"{names[c]} {p.stat().st_size / 1e6:.0f} MB" for c, p in inp.archives.items())
    data["inputs"] = {
        "tree": f"{len(inp.elf_files):,} ELF files, {inp.elf_bytes / 1e6:.0f} MB of ELF ({inp.tree_note}); "
        f"docker-archives of it with one layer, gzip at level 6, zstd at level 3 ({archives})",
        "jar": f"a Spring-Boot-like fat JAR: {inp.jar_note}",
        "elf_files": len(inp.elf_files),
        "elf_bytes": inp.elf_bytes,
    }
    elf_list = work / "elf-files.list"
    elf_list.write_bytes(b"".join(str(p).encode() + b"\0" for p in inp.elf_files))

    fleet_images = FLEET_IMAGES_QUICK if args.quick else FLEET_IMAGES
    dask_images = DASK_IMAGES_QUICK if args.quick else DASK_IMAGES
    try:
        bench.directory_cases(inp, elf_list)
        bench.image_cases(inp)
        bench.guarded(bench.REBUILT, lambda: bench.rebuilt_image_cases(inp))
        bench.jar_cases(inp)
        bench.scaling_cases(inp, scan_help)
        bench.cache_cases(inp, scan_help)
        bench.guarded(bench.fleet_labels(fleet_images), lambda: bench.fleet_cases(inp, fleet_images))
        bench.guarded(bench.dask_labels(dask_images), lambda: bench.dask_fleet_cases(inp, fleet_images, dask_images))
        if args.quick:
            bench.notes.append(f"--quick: a fleet of {fleet_images} images, not {FLEET_IMAGES}.")
        bench.notes.append(f"The fleet on Dask and in one process: the first {dask_images} images of the fleet.")
        sizes = [n for n in GROWTH_SIZES if not (args.quick and n >= 10_000)]
        if args.quick:
            bench.notes.append("--quick: the 10,000-file growth point was skipped.")
        data["growth"] = bench.growth_cases(inp, sizes)
    finally:
        if not args.keep:
            log(f"removing {work} (--keep keeps it)")
            shutil.rmtree(work, ignore_errors=True)

    data["machine"]["load_at_end"] = os.getloadavg()[0]
    data["settings"] = {
        "runs": args.runs,
        "quick": args.quick,
        "budget_s": args.budget,
        "musl": MUSL,
        "launcher": launcher.kind,
        "launcher_rss_floor_mb": round(launcher.floor_mb, 2),
    }
    data["versions"] = versions(bench, venv_python)
    data["inputs"].update(bench.input_notes)
    data["checks"] = bench.checks
    data["targets"] = targets(bench.results, {"growth": data["growth"], **bench.checks})
    data["notes"] = bench.notes
    png = write_report(data, bench.results, args.out, venv_python)
    if args.update_docs:
        update_docs((args.out / "results.md").read_text(), png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
