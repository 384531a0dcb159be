"""The explorer's plots as inline SVG strings, drawn from `data.page_data`'s run rows (no charting library).

Each function returns one `<svg>` element, or None when the runs give it nothing to show (one depth, no
samples, no gold steps). Every label that comes from a run (names, models, folders) is HTML-escaped here, so
the strings can go into the page as they are. Colours and lines are styled by the page's CSS classes.

>>> nice_ticks(0, 87)
[0, 20, 40, 60, 80, 100]
"""

from __future__ import annotations

import html
import math
from collections import defaultdict

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569",
           "#ea580c")
LEFT, RIGHT, TOP, BOTTOM = 56, 18, 16, 46
"""Margins around a plot area, in pixels of the viewBox."""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _n(value: float) -> str:
    return f"{value:.1f}"


def nice_ticks(low: float, high: float, most: int = 6, whole: bool = False) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering [low, high] in at most `most` ticks;
    `whole`: steps of at least 1 (for counts)."""
    span = max(high - low, 1e-9)
    for step in (m * 10 ** e for e in range(math.floor(math.log10(span / most)) - 1, 12) for m in (1, 2, 5)):
        if whole and step < 1:
            continue
        first, last = math.floor(low / step) * step, math.ceil(high / step) * step
        if (last - first) / step <= most - 1 + 1e-9:
            count = round((last - first) / step)
            return [round(first + i * step, 10) for i in range(count + 1)]
    return [low, high]


class Axes:
    """A plot area at (left, top) of width x height pixels, showing data x in [x0, x1] and y in [y0, y1]."""

    def __init__(self, x0, x1, y0, y1, left=LEFT, top=TOP, width=480, height=220):
        self.x0, self.x1, self.y0, self.y1 = x0, x1 if x1 != x0 else x0 + 1, y0, y1 if y1 != y0 else y0 + 1
        self.left, self.top, self.width, self.height = left, top, width, height

    def x(self, value: float) -> float:
        return self.left + (value - self.x0) / (self.x1 - self.x0) * self.width

    def y(self, value: float) -> float:
        return self.top + self.height - (value - self.y0) / (self.y1 - self.y0) * self.height

    def frame(self, x_ticks, y_ticks, x_label: str, y_label: str, x_format=str, y_format=str) -> str:
        """Grid lines, tick labels, the axis titles and the outline of the area."""
        parts = []
        for value in y_ticks:
            y = _n(self.y(value))
            parts.append(f'<line class="grid" x1="{self.left}" x2="{self.left + self.width}" y1="{y}" y2="{y}"/>'
                         f'<text class="tick" x="{self.left - 6}" y="{y}" text-anchor="end" dy="0.32em">'
                         f'{_e(y_format(value))}</text>')
        bottom = self.top + self.height
        for value, text in x_ticks:
            x = _n(self.x(value))
            parts.append(f'<line class="axis" x1="{x}" x2="{x}" y1="{bottom}" y2="{bottom + 4}"/>'
                         f'<text class="tick" x="{x}" y="{bottom + 16}" text-anchor="middle">'
                         f"{_e(x_format(text))}</text>")
        parts.append(f'<rect class="outline" x="{self.left}" y="{self.top}" width="{self.width}" '
                     f'height="{self.height}"/>')
        parts.append(f'<text class="axis-title" x="{self.left + self.width / 2}" y="{bottom + 36}" '
                     'text-anchor="middle">'
                     f'{_e(x_label)}</text>')
        middle = self.top + self.height / 2
        parts.append(f'<text class="axis-title" transform="translate({self.left - 42} {middle}) rotate(-90)" '
                     'text-anchor="middle">'
                     f'{_e(y_label)}</text>')
        return "".join(parts)

    def whisker(self, x: float, low: float, high: float, color: str) -> str:
        """A vertical interval from low to high (data units) at pixel x, with caps."""
        top, bottom = _n(self.y(high)), _n(self.y(low))
        x0, x1 = _n(x - 4), _n(x + 4)
        return (f'<g class="whisker" stroke="{color}"><line x1="{_n(x)}" x2="{_n(x)}" y1="{top}" y2="{bottom}"/>'
                f'<line x1="{x0}" x2="{x1}" y1="{top}" y2="{top}"/><line x1="{x0}" x2="{x1}" y1="{bottom}" '
                f'y2="{bottom}"/></g>')


WIDE = 720
"""A plot wider than this (bars of many runs) takes a whole row of the page at its own size, scrolling sideways
if need be, rather than shrinking into half a row until its labels cannot be read."""


def svg(width: int, height: int, body: str, label: str) -> str:
    wide = " wide" if width > WIDE else ""
    return (f'<svg class="plot{wide}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" role="img" aria-label="{_e(label)}">{body}</svg>')


def legend(entries: list[tuple[str, str, bool]], top: float, width: float, bars: bool = False) -> tuple[str, float]:
    """Swatches and names ((name, colour, dashed) each) in rows below a plot; the SVG and its height.
    `bars`: square swatches (for bar charts) rather than lines."""
    column = 250
    per_row = max(1, int((width - LEFT) // column))
    parts = []
    for index, (name, color, dashed) in enumerate(entries):
        x, y = LEFT + (index % per_row) * column, top + (index // per_row) * 18
        short = name if len(name) <= 38 else name[:36] + "…"
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        swatch = (f'<rect x="{x + 6}" y="{y - 5}" width="10" height="10" fill="{color}"/>' if bars else
                  f'<line x1="{x}" x2="{x + 22}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="3"{dash}/>')
        parts.append(f'<g class="legend"><title>{_e(name)}</title>{swatch}<text x="{x + 28}" y="{y}" dy="0.32em">'
                     f'{_e(short)}</text></g>')
    rows = math.ceil(len(entries) / per_row)
    return "".join(parts), rows * 18 + 6


def percent(value: float) -> str:
    return f"{value:g}%"


def short_names(rows: list[dict]) -> list[str]:
    """Each run's task · strategy · model (· samples), keeping only the parts that differ between the runs; with
    the run's label where two runs at one depth would still share a name."""
    keys = [k for k in ("task", "strategy", "model") if len({str(r.get(k)) for r in rows}) > 1] or ["strategy"]
    names = [" · ".join(str(r.get(k)) for k in keys) for r in rows]
    if len({r.get("samples") for r in rows}) > 1:
        names = [f"{name} · {r.get('samples')} samples" for name, r in zip(names, rows)]
    at_depth = [(name, r.get("depth")) for name, r in zip(names, rows)]
    if len(set(at_depth)) < len(at_depth):
        names = [f"{name} · {r['label']}" for name, r in zip(names, rows)]
    return names


def by_short_name(rows: list[dict]) -> dict[str, list[dict]]:
    """Runs grouped under their `short_names`, in the order the names first appear: one series or bar group each."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for name, row in zip(short_names(rows), rows):
        groups[name].append(row)
    return groups


def _ci(row) -> tuple[float, float]:
    ci = row.get("ci95") or [row["accuracy"], row["accuracy"]]
    return 100 * ci[0], 100 * ci[1]


def _point(axes: Axes, x: float, row: dict, color: str, tip: str) -> str:
    low, high = _ci(row)
    y = axes.y(100 * row["accuracy"])
    return (f'<g class="point"><title>{_e(tip)}</title>{axes.whisker(x, low, high, color)}'
            f'<circle cx="{_n(x)}" cy="{_n(y)}" r="4" fill="{color}"/></g>')


def _tip(row: dict, name: str) -> str:
    low, high = _ci(row)
    depth = f", depth {row['depth']}" if row.get("depth") is not None else ""
    return f"{name}{depth} ({row['label']}): {100 * row['accuracy']:.1f}% [{low:.1f}, {high:.1f}], n={row['n']}"


def depth_plot(rows: list[dict]) -> str | None:
    """Accuracy against depth with 95% whiskers, one line per task · strategy · model; None for one depth."""
    rows = [r for r in rows if r.get("depth") is not None and r.get("accuracy") is not None]
    depths = sorted({r["depth"] for r in rows})
    if len(depths) < 2:
        return None
    series = by_short_name(rows)
    axes = Axes(depths[0] - 0.5, depths[-1] + 0.5, 0, 100)
    width = axes.left + axes.width + RIGHT
    body = [axes.frame([(d, d) for d in depths], range(0, 101, 20), "depth (reasoning steps)", "accuracy",
                       y_format=lambda v: f"{v}%")]
    entries = []
    for k, (name, mine) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        shift = 6 * (k - (len(series) - 1) / 2)  # pixels: side by side, so the whiskers stay readable
        mine = sorted(mine, key=lambda r: r["depth"])
        line = " ".join(f"{_n(axes.x(r['depth']) + shift)},{_n(axes.y(100 * r['accuracy']))}" for r in mine)
        body.append(f'<polyline class="series" points="{line}" stroke="{color}"/>')
        body += [_point(axes, axes.x(r["depth"]) + shift, r, color, _tip(r, name)) for r in mine]
        entries.append((name, color, False))
    keys, height = legend(entries, axes.top + axes.height + BOTTOM + 8, width)
    return svg(width, axes.top + axes.height + BOTTOM + 8 + height, "".join(body) + keys, "accuracy against depth")


NO_DEPTH = "#9ca3af"
"""The bar colour of a run without a depth (a BBH file, GSM8K) beside runs shaded by depth."""


def strategy_plot(rows: list[dict]) -> str | None:
    """Bars of accuracy per strategy (task · strategy · model), one bar per depth when runs span depths."""
    rows = [r for r in rows if r.get("accuracy") is not None]
    if len(rows) < 2:
        return None
    groups = by_short_name(rows)
    depths = sorted({r["depth"] for r in rows if r.get("depth") is not None})
    by_depth = len(depths) > 1
    shade = {d: _blend(PALETTE[0], (i + 1) / len(depths)) for i, d in enumerate(depths)}
    gap, bars = 22, sum(len(g) for g in groups.values())
    bar = max(14.0, min(56.0, (480 - gap * len(groups)) / bars))  # wide bars for a few runs, thin for a sweep
    slots = [max(len(g) * bar + gap, 120.0) for g in groups.values()]  # room for each group's name below it
    span = max(480.0, sum(slots))
    axes = Axes(0, span, 0, 100, width=span, height=220)  # data units are pixels here
    width = axes.left + axes.width + RIGHT
    body, ticks, edge = [], [], (span - sum(slots)) / 2
    for k, ((name, mine), slot) in enumerate(zip(groups.items(), slots)):
        mine = sorted(mine, key=lambda r: (r.get("depth") is None, r.get("depth") or 0))
        position = edge + (slot - len(mine) * bar) / 2
        for row in mine:
            color = shade.get(row.get("depth"), NO_DEPTH) if by_depth else PALETTE[k % len(PALETTE)]
            x, y = axes.x(position), axes.y(100 * row["accuracy"])
            low, high = _ci(row)
            body.append(f'<g class="bar"><title>{_e(_tip(row, name))}</title><rect x="{_n(x + 1)}" y="{_n(y)}" '
                        f'width="{_n(bar - 2)}" height="{_n(axes.y(0) - y)}" fill="{color}"/>'
                        f'{axes.whisker(x + bar / 2, low, high, "#111827")}</g>')
            position += bar
        room = max(8, int(slot // 6.5) - 1)  # characters that fit under the group at the tick labels' size
        ticks.append((edge + slot / 2, name if len(name) <= room else name[:room - 1] + "…"))
        edge += slot
    body.insert(0, axes.frame(ticks, range(0, 101, 20), "", "accuracy", y_format=lambda v: f"{v}%"))
    entries = [(f"depth {d}", shade[d], False) for d in depths] if by_depth else []
    if by_depth and any(r.get("depth") is None for r in rows):
        entries.append(("no depth (a task of fixed items)", NO_DEPTH, False))
    keys, height = legend(entries, axes.top + axes.height + BOTTOM + 8, width, bars=True) if entries else ("", 0)
    return svg(width, axes.top + axes.height + BOTTOM + 8 + height, "".join(body) + keys, "accuracy by strategy")


def _blend(color: str, amount: float) -> str:
    """`color` mixed with white: amount 1 is the colour itself, small amounts are pale (shallow depths)."""
    amount = 0.25 + 0.75 * amount
    channels = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - c) * amount):02x}" for c in channels)


def k_plot(rows: list[dict]) -> str | None:
    """pass@k (solid) and maj@k (dashed) against k for runs with several samples per item; None without."""
    curves = []
    for name, row in zip(short_names(rows), rows):
        found = row.get("k_curves")
        if found:
            curves.append((name, row, list(zip(found["k"], found["pass"])),
                           list(zip(found["k"], found["maj"])) if found.get("maj") else []))
        elif row.get("at_k"):  # the summary's own figures when the items' samples are not at hand
            at = {key: value for key, value in row["at_k"].items() if value is not None}
            passed = sorted((int(key[5:]), v) for key, v in at.items() if key.startswith("pass@"))
            majority = sorted((int(key[4:]), v) for key, v in at.items() if key.startswith("maj@"))
            curves.append((name, row, passed, majority))
    if not curves:
        return None
    top = max(k for _, _, passed, majority in curves for k, _ in passed + majority)
    axes = Axes(0.5, top + 0.5, 0, 100)
    ks = range(1, top + 1) if top <= 16 else [int(t) for t in nice_ticks(1, top) if t >= 1]
    width = axes.left + axes.width + RIGHT
    body = [axes.frame([(k, k) for k in ks], range(0, 101, 20), "k (samples per item)", "share of items",
                       y_format=lambda v: f"{v}%")]
    entries = []
    for index, (name, row, passed, majority) in enumerate(curves):
        color = PALETTE[index % len(PALETTE)]
        label = f"{name} ({row['label']})" if len(curves) > 1 else name
        for kind, points, dashed in (("pass", passed, False), ("maj", majority, True)):
            if not points:
                continue
            line = " ".join(f"{_n(axes.x(k))},{_n(axes.y(100 * v))}" for k, v in points)
            dash = ' stroke-dasharray="5 3"' if dashed else ""
            body.append(f'<polyline class="series" points="{line}" stroke="{color}"{dash}/>')
            body += [f'<g class="point"><title>{_e(f"{label}: {kind}@{k} = {100 * v:.1f}%")}</title><circle '
                     f'cx="{_n(axes.x(k))}" cy="{_n(axes.y(100 * v))}" r="3.5" fill="{color}"/></g>' for k, v in points]
            entries.append((f"{kind}@k · {label}", color, dashed))
    keys, height = legend(entries, axes.top + axes.height + BOTTOM + 8, width)
    return svg(width, axes.top + axes.height + BOTTOM + 8 + height, "".join(body) + keys, "pass@k and maj@k against k")


def tokens_plot(rows: list[dict]) -> str | None:
    """Accuracy (95% whiskers) against completion tokens per item, one point per run, coloured by strategy."""
    rows = [r for r in rows if r.get("tokens_per_item") is not None and r.get("accuracy") is not None]
    if not rows:
        return None
    names = short_names(rows)
    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}
    ticks = nice_ticks(0, 1.08 * max(r["tokens_per_item"] for r in rows) or 1)
    axes = Axes(0, ticks[-1], 0, 100)
    width = axes.left + axes.width + RIGHT
    body = [axes.frame([(t, t) for t in ticks], range(0, 101, 20), "completion tokens per item", "accuracy",
                       x_format=lambda v: f"{v:g}", y_format=lambda v: f"{v}%")]
    for name, row in zip(names, rows):
        tip = _tip(row, name) + f", {row['tokens_per_item']:.1f} completion tokens per item"
        body.append(_point(axes, axes.x(row["tokens_per_item"]), row, colors[name], tip))
        if len(rows) <= 6:
            x = axes.x(row["tokens_per_item"])
            right = x > axes.left + 0.7 * axes.width  # near the right edge the label goes to the left of its point
            body.append(f'<text class="note" x="{_n(x - 7 if right else x + 7)}" '
                        f'y="{_n(axes.y(100 * row["accuracy"]) - 6)}" text-anchor="{"end" if right else "start"}">'
                        f'{_e(row["label"])}</text>')
    keys, height = legend([(name, color, False) for name, color in colors.items()],
                          axes.top + axes.height + BOTTOM + 8, width)
    return svg(width, axes.top + axes.height + BOTTOM + 8 + height, "".join(body) + keys,
               "accuracy against completion tokens per item")


def per_step_plot(per_step: dict | None) -> str | None:
    """Accuracy at each step position (left) and how many items first went wrong there (right)."""
    if not per_step or not per_step.get("accuracy"):
        return None
    accuracy, first = per_step["accuracy"], per_step.get("first_wrong") or []
    count = len(accuracy)
    panel = max(200, 26 * count)
    left = Axes(0.5, count + 0.5, 0, 100, width=panel, height=170)
    most = nice_ticks(0, max(first + [1]), 5, whole=True)
    right = Axes(0.5, count + 0.5, 0, most[-1], left=LEFT * 2 + panel + 10, width=panel, height=170)
    steps = [(i, i) for i in range(1, count + 1)] if count <= 20 else [(i, i) for i in range(1, count + 1, 5)]
    body = [left.frame(steps, range(0, 101, 25), "step", "accuracy", y_format=lambda v: f"{v}%"),
            right.frame(steps, most, "first wrong step", "items", y_format=lambda v: f"{v:g}")]
    bar = min(22, panel / count * 0.7)
    support = per_step.get("support") or [None] * count
    for i, value in enumerate(accuracy, 1):
        y = left.y(100 * value)
        tip = f"step {i}: {100 * value:.1f}% right" + (f" of {support[i - 1]} items" if support[i - 1] else "")
        body.append(f'<g class="bar"><title>{_e(tip)}</title><rect x="{_n(left.x(i) - bar / 2)}" y="{_n(y)}" '
                    f'width="{_n(bar)}" height="{_n(left.y(0) - y)}" fill="{PALETTE[0]}"/></g>')
    for i, value in enumerate(first, 1):
        y = right.y(value)
        body.append(f'<g class="bar"><title>{_e(f"first wrong at step {i}: {value} items")}</title><rect '
                    f'x="{_n(right.x(i) - bar / 2)}" y="{_n(y)}" width="{_n(bar)}" height="{_n(right.y(0) - y)}" '
                    f'fill="{PALETTE[1]}"/></g>')
    width = right.left + right.width + RIGHT
    return svg(width, TOP + 170 + BOTTOM, "".join(body), "accuracy of each step and the first wrong step")
