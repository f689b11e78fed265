"""Print the real loaders' verdict on every sample as a Markdown table (evidence for samples/README.md).

    python3 samples/build.py OUT && python3 -m tests.oracle.matrix OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.oracle.dlopen import run_dlopen
from tests.oracle.ldd import LoaderReport, run_list
from tests.oracle.loaders import available_loaders


def summary(rc: int, report: LoaderReport, root: Path) -> str:
    def short(path: str) -> str:
        return Path(path).name

    parts = [f"missing `{n}`" for n, _ in sorted(report.missing_libraries)]
    parts += [f"`{s}` not found ({short(f)})" for f, s in sorted(report.unresolved_symbols)]
    parts += [f"reloc type {t} ({short(f)})" for f, t in sorted(report.unsupported_relocations)]
    parts += [f"IE TLS `{s}` ({short(f)})" for f, s, _ in sorted(report.tls_errors)]
    parts += [str(e).replace(str(root), "") for e in report.other_errors]
    return f"{rc}: " + "; ".join(parts) if parts else f"{rc}: OK"


def main(argv: list[str]) -> int:
    out = Path(argv[0]).resolve()
    manifest = json.loads((out / "manifest.json").read_text())
    loaders = available_loaders()
    print("| sample | context | " + " | ".join(loaders) + " |")
    print("|---|---|" + "---|" * len(loaders))
    for sample in manifest["samples"]:
        root = out / sample["name"]
        cells = [summary(*run_list(loader, root / sample["entry"])[:2], root) for loader in loaders.values()]
        print(f"| {sample['name']} | `--list {sample['entry']}` | " + " | ".join(cells) + " |")
        for lib in sample["dlopen"]:
            for mode in ("lazy", "now"):
                res = [run_dlopen(ld, out / manifest["harness"], root / lib, mode) for ld in loaders.values()]
                cells = ["OK" if r.ok else f"ERR {(r.error or '').replace(str(root), '')}" for r in res]
                print(f"| {sample['name']} | dlopen {mode} `{Path(lib).name}` | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
