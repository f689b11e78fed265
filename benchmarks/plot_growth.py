"""Draw the growth figure from run.py's results.json (run with the bench venv's Python: it has matplotlib).

python plot_growth.py results.json growth.png
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main() -> None:
    with open(sys.argv[1]) as f:
        data = json.load(f)
    growth = data["growth"]
    sizes = growth["sizes"]
    fig, (ax_time, ax_rss) = plt.subplots(1, 2, figsize=(11, 4.2))
    for tool, style in (("muslcheck", "o-"), ("scanelf", "s--")):
        series = growth["series"].get(tool)
        if not series:
            continue
        # muslcheck's memory is that of all its processes (parent and workers) where run.py measured it
        every = "all_rss_mb" in series and any(v is not None for v in series["all_rss_mb"])
        rss = series["all_rss_mb"] if every else series["rss_mb"]
        pts = [(n, w, r) for n, w, r in zip(sizes, series["wall_s"], rss, strict=True)
               if w is not None and r is not None]
        if not pts:
            continue
        fit = series.get("fit_wall") or {}
        label = f"{tool} (R² {fit['r2']:.3f})" if fit.get("r2") is not None else tool
        ax_time.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
        if fit.get("slope") is not None:  # the fitted line, a + b·N, drawn over the measured range
            xs = [sizes[0] * (sizes[-1] / sizes[0]) ** (i / 50) for i in range(51)]
            ys = [fit["intercept"] + fit["slope"] * x for x in xs]
            ax_time.plot(
                *zip(*[(x, y) for x, y in zip(xs, ys, strict=True) if y > 0], strict=True),
                ":",
                color=ax_time.lines[-1].get_color(),
                alpha=0.6,
            )
        fit = series.get("fit_all_rss" if every else "fit_rss") or {}
        tool = f"{tool}, all processes" if every else tool
        label = f"{tool} (R² {fit['r2']:.3f})" if fit.get("r2") is not None else tool
        ax_rss.plot([p[0] for p in pts], [p[2] for p in pts], style, label=label)
    for ax, ylabel in ((ax_time, "wall time (s), median"), (ax_rss, "peak RSS (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ELF files in the tree")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    title = "muslcheck scan vs scanelf -R: growth with the number of ELF files"
    if data["settings"].get("quick"):
        title += " (--quick run)"
    fig.suptitle(title)
    fig.text(
        0.01, 0.01, f"{data['date']}; {data['machine']['cpu']}, {data['machine']['cores']} cores", fontsize=7, alpha=0.7
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
