"""The explorer's one HTML file: static tables and plots built here, the item browser built by page.js.

Everything from a run (model names, settings, anything a model wrote) is HTML-escaped where it goes into the
markup, and goes to the script only as JSON inside `<script type="application/json">`, with `<`, `>`, `&` and
the two JavaScript line separators written as \\uXXXX escapes so that no text can close the tag. page.js builds
the browser's elements with createElement/textContent only. The Content-Security-Policy forbids every network
load (the page works offline) and lets only the page's own script and style run, by their hashes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from datetime import datetime, timezone
from pathlib import Path

from engine.explorer import plots

ASSETS = Path(__file__).resolve().parent
def content_policy(script: str, style: str) -> str:
    """Nothing from the network; only this page's own script and style run (by hash), so neither an injected
    `<script>` nor an `onerror=` attribute could, even if some text were ever parsed as markup."""
    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"

    return (f"default-src 'none'; script-src {digest(script)}; style-src {digest(style)}; img-src data:; "
            "base-uri 'none'; form-action 'none'")
DATA_ID = "explorer-data"


def _e(value) -> str:
    return html.escape("—" if value is None else str(value), quote=True)


def pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def interval(ci) -> str:
    return "—" if not ci else f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}" if abs(value) < 1e6 else f"{value:.3g}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def script_json(data) -> str:
    """JSON that is safe inside a <script> element: no `<`, `>` or `&`, and no U+2028/U+2029, appear raw."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def table(head: list[str], rows: list[list[str]], classes: str = "") -> str:
    """An HTML table from cells that are already markup (escape them before)."""
    top = "".join(f"<th>{cell}</th>" for cell in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return (f'<div class="table-wrap"><table class="{classes}"><thead><tr>{top}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def render_page(data: dict, title: str) -> str:
    """The whole page for `data.page_data(...)`."""
    runs = data["runs"]
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sections = [overview(runs), plot_section(runs)]
    if data["comparisons"]:
        sections.append(comparison_section(data))
    sections.append('<section id="items"><h2>Items</h2><div id="browser"><noscript>The item browser needs '
                    'JavaScript.</noscript></div></section>')
    details = "".join(run_section(i, r, len(runs)) for i, r in enumerate(runs))
    sections.append(f'<section id="runs"><h2>Runs</h2>{details}</section>')
    links = [("overview", "Overview"), ("plots", "Plots")] + ([("comparison", "Paired comparison")]
                                                              if data["comparisons"] else [])
    links += [("items", "Items"), ("runs", "Runs")]
    nav = "".join(f'<a href="#{anchor}">{text}</a>' for anchor, text in links)
    script = (ASSETS / "page.js").read_text(encoding="utf-8")
    style = (ASSETS / "page.css").read_text(encoding="utf-8")
    if "</script" in script.lower() or "</style" in style.lower():
        raise ValueError("page.js and page.css must not contain '</script' or '</style'")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{content_policy(script, style)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{style}</style></head>"
        f'<body><header><h1>{_e(title)}</h1><p class="sub">{len(runs)} run{"s" * (len(runs) != 1)} · '
        f'{len(data["items"])} items · written {created} by <code>python -m engine report</code></p>'
        f"<nav>{nav}</nav></header><main>{''.join(sections)}</main>"
        f'<script type="application/json" id="{DATA_ID}">{script_json(data)}</script>'
        f"<script>{script}</script></body></html>\n"
    )


def floor_text(run: dict) -> str:
    """ "floor 50.0% · chance 50.0%": what the run's chain scores with no model (`--floor`), and the task's chance
    rate; "" when neither is known."""
    parts = []
    if run.get("floor"):
        parts.append(f'floor {pct(run["floor"].get("accuracy"))}')
    if run.get("chance") is not None:
        parts.append(f'chance {pct(run["chance"])}')
    return " · ".join(parts)


def overview(runs: list[dict]) -> str:
    shared = [k for k in ("task", "model", "backend") if len(runs) > 1 and len({str(r[k]) for r in runs}) == 1]
    varying = [k for k in ("task", "strategy", "model", "backend", "depth", "samples") if k not in shared
               and (k not in ("depth", "samples") or len({r[k] for r in runs}) > 1 or len(runs) == 1)]
    floors = any(floor_text(r) for r in runs)
    head = ["run"] + varying + ["items", "accuracy [95% CI]"] + (["floor · chance"] if floors else []) + [
        "unparsed", "truncated", "errors", "tokens prompt / completion", "completion per item", "wall s"]
    rows = [[f'<a href="#run-{i}" class="run-link">{_e(r["label"])}</a>'] + [_e(r[k]) for k in varying]
            + [number(r["n"]), f'<b>{pct(r["accuracy"])}</b> {interval(r["ci95"])}']
            + ([_e(floor_text(r) or "—")] if floors else [])
            + [pct(r["unparsed_rate"]), pct(r["truncated_rate"]), number(r["errors"]),
               f'{number(r["prompt_tokens"])} / {number(r["completion_tokens"])}',
               "—" if r["tokens_per_item"] is None else f'{r["tokens_per_item"]:.1f}',
               number(r["wall_seconds"])] for i, r in enumerate(runs)]
    common = " · ".join(f"{k} <b>{_e(runs[0][k])}</b>" for k in shared)
    note = f'<p class="hint">All runs: {common}</p>' if common else ""
    return f'<section id="overview"><h2>Overview</h2>{note}{table(head, rows, "numbers")}</section>'


def plot_section(runs: list[dict]) -> str:
    cards = [
        ("Accuracy against depth", "95% Wilson intervals; one line per task · strategy · model.",
         plots.depth_plot(runs)),
        ("Accuracy by strategy", "95% Wilson intervals" + ("; one bar per depth, darker is deeper."
                                                          if len({r["depth"] for r in runs}) > 1 else "."),
         plots.strategy_plot(runs)),
        ("pass@k and maj@k", "Unbiased pass@k from each item's samples (solid), majority vote of the first k "
                             "samples (dashed).", plots.k_plot(runs)),
        ("Accuracy against tokens spent", "Completion tokens per item (all steps), one point per run.",
         plots.tokens_plot(runs)),
    ]
    if len(runs) == 1 and runs[0].get("per_step"):
        cards.append(("Per-step accuracy", "Items whose predicted intermediate result matches the gold step, and "
                                           "where chains first went wrong.", plots.per_step_plot(runs[0]["per_step"])))
    shown = [f'<figure class="card"><h3>{_e(name)}</h3>{svg}<figcaption>{_e(note)}</figcaption></figure>'
             for name, note, svg in cards if svg]
    if len(runs) > 1 and any(r.get("per_step") for r in runs):
        shown.append('<p class="hint">Per-step accuracy of each run is in its section under '
                     '<a href="#runs">Runs</a>.</p>')
    return f'<section id="plots"><h2>Plots</h2><div class="cards">{"".join(shown)}</div></section>'


def comparison_section(data: dict) -> str:
    runs = data["runs"]
    head = ["A", "B", "shared items", "A acc.", "B acc.", "B − A [95% CI]", "A right, B wrong", "A wrong, B right",
            "McNemar p", "verdict"]
    rows = []
    for c in data["comparisons"]:
        low, high = c["bootstrap"]["ci95"]
        rows.append([_e(runs[c["a"]]["label"]), _e(runs[c["b"]]["label"]), number(c["shared"]), pct(c["accuracy_a"]),
                     pct(c["accuracy_b"]), f'{100 * c["delta"]:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]',
                     number(c["mcnemar"]["b01"]), number(c["mcnemar"]["b10"]), f'{c["mcnemar"]["p_value"]:.3g}',
                     f'<span class="{"sig" if c["significant"] else "nosig"}">{_e(c["verdict"])}</span>'])
    note = ("Paired on the items both runs scored: McNemar's exact test on the items where they disagree, and a "
            "paired bootstrap interval (10,000 resamples) of the accuracy difference, as "
            "<code>python -m engine compare A B</code> reports them.")
    return (f'<section id="comparison"><h2>Paired comparison</h2><p class="hint">{note}</p>'
            f'{table(head, rows, "numbers")}'
            '<h3>Items that flipped</h3><div id="flips"></div></section>')


def run_section(index: int, run: dict, count: int) -> str:
    opened = " open" if count <= 2 else ""
    cards = [("accuracy", pct(run["accuracy"]), f'95% CI {interval(run["ci95"])}'),
             *([("floor", pct(run["floor"]["accuracy"]), f'no model; 95% CI {interval(run["floor"]["ci95"])}'
                 + (f'; chance {pct(run["chance"])}' if run.get("chance") is not None else ""))] if run.get("floor")
               else [("chance", pct(run["chance"]), "a uniform guess")] if run.get("chance") is not None else []),
             ("items", number(run["n"]), f'{number(run["correct"])} correct'),
             ("unparsed", pct(run["unparsed_rate"]), f'errors: {number(run["errors"])}'),
             ("truncated", pct(run["truncated_rate"]), "cut at the token limit"),
             ("tokens", number(run["completion_tokens"]), f'completion; {number(run["prompt_tokens"])} prompt'),
             ("wall time", f'{number(run["wall_seconds"])} s', f'{number(run["tokens_per_second"])} tokens/s')]
    figures = "".join(f'<div class="figure"><span class="name">{name}</span><span class="value">{value}</span>'
                      f'<span class="more">{more}</span></div>' for name, value, more in cards)
    parts = [f'<div class="figures">{figures}</div>']
    parts += [f'<p class="warning">{_e(note)}</p>' for note in run["notes"]]
    about = [("folder", run["folder"]), ("model", run["model"]), ("backend", run["backend"]), ("dtype", run["dtype"]),
             ("scheduler", run["scheduler"]), ("backend requests", run["backend_requests"]),
             ("prefix cache hit rate", pct((run["prefix_cache"] or {}).get("hit_rate"))),
             ("start-up s", run["startup_seconds"]), ("peak RSS MB", run["peak_rss_mb"]), ("created", run["created"])]
    parts.append('<div class="columns"><div><h4>Run</h4>' + table(["", ""], [[_e(k), _e(v)] for k, v in about], "kv")
                 + "</div><div><h4>Settings (run.json)</h4>"
                 + (table(["", ""], [[_e(k), _e(json.dumps(v) if isinstance(v, (dict, list)) else v)]
                                     for k, v in run["settings"].items()], "kv") if run["settings"]
                    else '<p class="hint">this run folder has no run.json</p>') + "</div></div>")
    if run["extractions"]:
        parts.append("<h4>Extractions</h4>" + table(["extraction", "accuracy", "95% CI", "unparsed"], [
            [_e(name), pct(part.get("accuracy")), interval(part.get("ci95")), pct(part.get("unparsed_rate"))]
            for name, part in run["extractions"].items()], "numbers"))
    if run["at_k"]:
        parts.append("<h4>Samples</h4>" + table(list(map(_e, run["at_k"])), [[pct(v) for v in run["at_k"].values()]],
                                                 "numbers"))
    if run["step_errors"]:
        parts.append("<h4>Failed tool steps</h4>" + table(["kind", "steps"], [[_e(k), number(v)] for k, v in
                                                                              run["step_errors"].items()], "numbers"))
    if run["per_step"]:
        steps = run["per_step"]
        plot = plots.per_step_plot(steps) if count > 1 else ""  # a single run's is under Plots already
        parts.append('<h4>Per step</h4><div class="per-step">' + (plot or "") + "<div>" + table(
            ["step", "accuracy", "items", "first wrong here"],
            [[str(i + 1), pct(a), number(steps["support"][i]), number(steps["first_wrong"][i])]
             for i, a in enumerate(steps["accuracy"])], "numbers")
            + f'<p class="hint">all steps right: {number(steps.get("all_right"))}</p></div></div>')
    if run["per_class"]:
        parts.append("<h4>Per class</h4>" + table(["class", "precision", "recall", "F1", "support"], [
            [_e(name), pct(p["precision"]), pct(p["recall"]), pct(p["f1"]), number(p["support"])]
            for name, p in run["per_class"]["classes"].items()], "numbers")
            + f'<p class="hint">macro F1: {pct(run["per_class"].get("macro_f1"))}</p>')
    if run["environment"]:
        parts.append(f'<details class="env"><summary>environment</summary><pre>'
                     f'{_e(json.dumps(run["environment"], indent=2))}</pre></details>')
    depth = f" · depth {run['depth']}" if run["depth"] is not None else ""
    header = (f'<span class="run-name">{_e(run["label"])}</span> <span class="series">{_e(run["series"] + depth)}'
              '</span> '
              f'<span class="headline">{pct(run["accuracy"])} {interval(run["ci95"])}</span>'
              + (f' <span class="series">{_e(floor_text(run))}</span>' if floor_text(run) else ""))
    return (f'<details class="run" id="run-{index}"{opened}><summary><h3>{header}</h3></summary>'
            f'<div class="run-body">{"".join(parts)}</div></details>')
