"""The chart of the report: requests per second against concurrency, one line per client.

One panel per server (rows) and operation (columns), log scales on both axes (the clients are
two orders of magnitude apart), the median of the rounds as the point and their min and max as
the error bar. Drawn with matplotlib's Agg backend, so it needs no display.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

from benchmarks.client_cpu import Comparison

COLOURS = {
    "aioretell": "#1f77b4",
    "floor": "#7f7f7f",
    "retell-sdk": "#d62728",
    "retell-sdk aiohttp": "#ff7f0e",
}
STYLES = {"floor": "--"}


def draw(comparisons: Sequence[Comparison], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import (
        FixedLocator,
        FuncFormatter,
        LogLocator,
        NullFormatter,
        NullLocator,
    )

    targets = list(dict.fromkeys(c.target for c in comparisons))
    operations = list(dict.fromkeys(c.operation for c in comparisons))
    fig, axes = plt.subplots(
        len(targets),
        len(operations),
        figsize=(4.6 * len(operations), 3.6 * len(targets) + 0.9),
        squeeze=False,
        sharex=True,
    )
    for row, target in enumerate(targets):
        for col, operation in enumerate(operations):
            ax = axes[row][col]
            cells = sorted(
                (c for c in comparisons if c.target == target and c.operation == operation),
                key=lambda c: c.concurrency,
            )
            if not cells:
                ax.set_visible(False)
                continue
            for client in dict.fromkeys(name for c in cells for name in c.clients):
                xs, ys, low, high = [], [], [], []
                for c in cells:
                    if client not in c.samples:
                        continue
                    rps = c.rps(client)
                    med = statistics.median(rps)
                    xs.append(c.concurrency)
                    ys.append(med)
                    low.append(med - min(rps))
                    high.append(max(rps) - med)
                ax.errorbar(
                    xs,
                    ys,
                    yerr=[low, high],
                    label=client,
                    color=COLOURS.get(client),
                    linestyle=STYLES.get(client, "-"),
                    marker="o",
                    markersize=4,
                    capsize=3,
                    linewidth=1.6,
                )
            concurrencies = [c.concurrency for c in cells]
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_major_locator(FixedLocator(concurrencies))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            # 1, 2, 5 in each decade: a panel whose lines span less than a decade keeps labels
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.grid(True, which="both", alpha=0.3)
            ax.set_title(f"{operation}: {target} server", fontsize=11)
            if row == len(targets) - 1:
                ax.set_xlabel("concurrency (requests in flight)")
            if col == 0:
                ax.set_ylabel("requests / s (median, min to max)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
