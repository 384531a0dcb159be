"""report.md for one run, and the demo's accuracy-against-depth table and plot."""

from __future__ import annotations

from pathlib import Path

from engine.files import write_atomic


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def interval(ci) -> str:
    return f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"


def floor_line(summary: dict) -> list[str]:
    """The run's floor (no model) and the task's chance rate, as a report line, where either is known."""
    floor, chance = summary.get("floor"), summary.get("chance")
    parts = []
    if floor:
        parts.append(f"floor (no model, `--backend null`) {pct(floor['accuracy'])} ({interval(floor['ci95'])})")
    if chance is not None:
        parts.append(f"chance {pct(chance)}")
    return [f"- {'; '.join(parts)}"] if parts else []


def write_report(out: Path, summary: dict, records: list[dict]) -> None:
    """A readable view of summary.json plus a few wrong items with their final step."""
    lines = [
        f"# {summary['task']} · {summary['strategy']} · {summary['model']} ({summary['backend']})",
        "",
        f"- items: {summary['n']}; accuracy **{pct(summary['accuracy'])}** (95% CI {interval(summary['ci95'])}); "
        f"unparsed {pct(summary['unparsed_rate'])}; cut at the token limit {pct(summary.get('truncated_rate', 0))}; "
        f"errors {summary['errors']}",
        f"- tokens: {summary['prompt_tokens']} prompt, {summary['completion_tokens']} completion; "
        f"{summary['wall_seconds']} s wall; {summary.get('scheduler', 'waves')} scheduling, "
        f"{summary['backend_requests']} requests; prefix cache {pct(summary.get('prefix_cache', {}).get('hit_rate', 0))} "
        f"of prompt tokens",
        *floor_line(summary),
        "",
        "| extraction | accuracy | 95% CI | unparsed |",
        "|---|---|---|---|",
    ]
    for name, part in summary["extractions"].items():
        lines.append(f"| {name} | {pct(part['accuracy'])} | {interval(part['ci95'])} | {pct(part['unparsed_rate'])} |")
    for key in sorted(k for k in summary if k.startswith(("maj@", "pass@"))):
        lines.append(f"\n- {key}: {pct(summary[key])}")
    if "per_step" in summary:
        steps = summary["per_step"]
        lines += ["", "| step | accuracy | items | first wrong here |", "|---|---|---|---|"]
        for i, accuracy in enumerate(steps["accuracy"]):
            lines.append(f"| {i + 1} | {pct(accuracy)} | {steps['support'][i]} | {steps['first_wrong'][i]} |")
        lines.append(f"\nall steps right: {steps['all_right']}")
        plot_steps(steps, out / "per_step.png", f"{summary['task']} · {summary['strategy']}: accuracy of each step")
        lines.append("\n![accuracy of each step](per_step.png)")
    if "per_class" in summary:
        lines += ["", "| class | precision | recall | f1 | support |", "|---|---|---|---|---|"]
        for name, part in summary["per_class"]["classes"].items():
            lines.append(f"| {name} | {pct(part['precision'])} | {pct(part['recall'])} | {pct(part['f1'])} | {part['support']} |")
        lines.append(f"\nmacro F1: {pct(summary['per_class']['macro_f1'])}")
    wrong = [r for r in records if not r["correct"]][:5]
    if wrong:
        lines += ["", "## Some wrong items", ""]
        for record in wrong:
            last = next((s for s in reversed(record["steps"]) if s["outputs"]), None)
            output = (last["outputs"][0] if last else record.get("error") or "")[:600]
            lines += [f"### {record['id']}: gold {record['gold']!r}, answer {record['answer']!r}", "",
                      "```", record["question"][:600], "```", "", "Model output:", "", "```", output, "```", ""]
    write_atomic(out / "report.md", "\n".join(lines) + "\n")


def depth_table(rows: list[dict]) -> str:
    """Markdown table: one row per depth, one column per strategy (accuracy and 95% CI)."""
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    depths = sorted({r["depth"] for r in rows})
    head = "| depth | " + " | ".join(strategies) + " |"
    lines = [head, "|---|" + "---|" * len(strategies)]
    for depth in depths:
        cells = []
        for strategy in strategies:
            row = next(r for r in rows if r["depth"] == depth and r["strategy"] == strategy)
            cells.append(f"{pct(row['accuracy'])} {interval(row['ci95'])} (unparsed {pct(row['unparsed_rate'])})")
        lines.append(f"| {depth} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_depths(rows: list[dict], path: Path, title: str) -> None:
    """Accuracy (with 95% intervals) against depth, one line per strategy."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    for offset, strategy in enumerate(strategies):
        mine = sorted((r for r in rows if r["strategy"] == strategy), key=lambda r: r["depth"])
        shift = 0.06 * (offset - (len(strategies) - 1) / 2)  # side by side, so the intervals stay readable
        xs = [r["depth"] + shift for r in mine]
        ys = [100 * r["accuracy"] for r in mine]
        low = [100 * (r["accuracy"] - r["ci95"][0]) for r in mine]
        high = [100 * (r["ci95"][1] - r["accuracy"]) for r in mine]
        ax.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=3, label=strategy)
    ax.set_xticks(sorted({r["depth"] for r in rows}))
    ax.set_xlabel("depth (reasoning steps)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_steps(steps: dict, path: Path, title: str) -> None:
    """Bar chart: accuracy at each step position, and where chains first went wrong."""
    plt = _pyplot()
    positions = list(range(1, len(steps["accuracy"]) + 1))
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    left.bar(positions, [100 * a for a in steps["accuracy"]])
    left.set(xlabel="step", ylabel="accuracy (%)", ylim=(0, 100), xticks=positions)
    right.bar(positions, steps["first_wrong"], color="tab:red")
    right.set(xlabel="step", ylabel="items", title="first wrong step", xticks=positions)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (runs have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
