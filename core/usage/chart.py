"""A PNG of a digest's daily spend by category: stacked bars, sized to stay legible as a Slack thumbnail.

Uses matplotlib's object API on the Agg canvas (no pyplot: no global figure state, safe in threads)
under the default style, so that a user's matplotlibrc cannot change the picture; PNG metadata is
pinned so that the same digest always gives the same bytes.
"""

from __future__ import annotations

import io

from core.usage.digest import UsageDigest
from storage.models.enums import Category

WIDTH_PX = 960
HEIGHT_PX = 540
DPI = 120
# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
COLOURS = {
    Category.EMAIL: "#0072B2",
    Category.MOBILE: "#E69F00",
    Category.ENRICHMENT: "#009E73",
    Category.EXPORT: "#CC79A7",
    Category.API: "#56B4E9",
    Category.AI: "#D55E00",
    None: "#999999",
}


def render_chart(digest: UsageDigest) -> bytes:
    import matplotlib.style

    with matplotlib.style.context("default"):
        fig = build_figure(digest)
        buffer = io.BytesIO()
        # No Software/date metadata: identical digests give identical bytes.
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def build_figure(digest: UsageDigest):
    """The chart as a matplotlib Figure (call under the default style, as `render_chart` does)."""
    # Imported here: matplotlib and numpy are ~40 MB of memory that every process building the
    # services (web workers, job workers, a CSV enrichment) would otherwise carry without drawing.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    days = digest.daily
    positions = list(range(len(days)))
    bottoms = [0] * len(days)
    for index, series in enumerate(days[0].by_category if days else ()):
        heights = [day.by_category[index].credits for day in days]
        if not any(heights):
            continue  # a category nobody spent on: no bar, no legend entry
        ax.bar(
            positions,
            heights,
            bottom=bottoms,
            width=0.7,
            color=COLOURS[series.category],
            label=f"{series.label} ({sum(heights):,})",
            edgecolor="white",
            linewidth=0.5,
        )
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    ax.set_xticks(positions, [f"{day.day:%a}\n{day.day:%d %b}" for day in days], fontsize=13)
    ax.tick_params(axis="y", labelsize=13)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_ylim(0, max(max(bottoms, default=0) * 1.1, 5))
    # At least three slots wide, so that a daily digest's single bar does not fill the chart.
    pad = max(0.0, (3 - len(days)) / 2)
    ax.set_xlim(-0.6 - pad, len(days) - 0.4 + pad)
    ax.set_ylabel("credits spent", fontsize=14)
    ax.set_xlabel("day (UTC)", fontsize=14)
    ax.set_title(
        f"{digest.team_name}: {digest.spent_credits:,} credits spent, {digest.period.label}",
        fontsize=15,
        loc="left",
    )
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if digest.spent_credits == 0:
        ax.text(0.5, 0.5, "no credits spent", transform=ax.transAxes, ha="center", va="center", fontsize=16)
    else:
        ax.legend(title="category", fontsize=12, title_fontsize=12, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig
