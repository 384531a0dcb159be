"""The run explorer: one self-contained HTML file to explore runs offline (`python -m engine report`).

The page shows each run's figures and settings, plots (accuracy against depth, by strategy, against tokens;
pass@k/maj@k; per-step accuracy), an item browser with every step's exact prompt and output, and, for runs of the
same items, the paired comparison and the items that flipped. Data, script and styles are all inline; the page
loads nothing from the network.

    data.py   run folders -> plain dicts (tested without a browser)
    plots.py  inline SVG plots
    page.py   the HTML around them (page.js and page.css are read from this folder and inlined)
"""

from __future__ import annotations

from pathlib import Path

from engine.files import write_atomic

__all__ = ["explorer_html", "write_explorer", "write_run_explorer"]


def explorer_html(runs: list[dict]) -> str:
    """The page for runs loaded with `data.load_run` (or built in memory as it builds them)."""
    from engine.explorer.data import page_data
    from engine.explorer.page import render_page

    data = page_data(runs)
    return render_page(data, _title(data["runs"]))


def _title(rows: list[dict]) -> str:
    if len(rows) == 1:
        row = rows[0]
        about = ", ".join(part for part in (row["backend"], f"depth {row['depth']}" if row["depth"] is not None
                                            else None) if part)
        return row["series"] + (f" ({about})" if about else "")
    tasks = sorted({str(row["task"]) for row in rows})
    return f"{', '.join(tasks)}: {len(rows)} runs"


def write_explorer(runs: list[str | Path], out: Path | str | None = None) -> Path:
    """Write the explorer for run folders (a demo or multi-run folder stands for the runs inside) and return its path.

    Default `out`: report.html inside the run folder when one run folder is given, explorer.html inside a demo
    folder when that alone is given, else explorer.html in the current folder. An `out` that is a folder gets
    explorer.html inside it.
    """
    from engine.explorer.data import find_runs, load_run

    folders = find_runs(runs)
    if out is None:
        if len(runs) == 1:
            given = Path(runs[0])
            out = given / ("report.html" if folders == [given] else "explorer.html")
        else:
            out = Path("explorer.html")
    out = Path(out)
    if out.is_dir():
        out = out / "explorer.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, explorer_html([load_run(folder) for folder in folders]))
    return out


def write_run_explorer(out_folder: Path, summary: dict, records: list[dict]) -> Path:
    """Write `out_folder/report.html` for a run just finished, from the summary and records in hand."""
    import json

    out_folder = Path(out_folder)
    settings_file = out_folder / "run.json"
    settings = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.is_file() else {}
    run = {"folder": out_folder, "summary": summary, "settings": settings, "records": records, "notes": []}
    path = out_folder / "report.html"
    write_atomic(path, explorer_html([run]))
    return path
