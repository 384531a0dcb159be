"""The demo's BIG-Bench-Hard part: problems someone else wrote, the base model against the shipped BBH adapter.

On the first N items of each of the twelve algorithmic BBH files (the same items for both models, N from
`--bbh-items`; 250 is every item), the base model and the adapter each run the file's own chain
(`default_strategy`), and the base model's run also records the chain's floor (the same chain with a model that
writes nothing): a figure is only worth what it stands above that. Each row says whether the adapter was
trained for the file, for its family only (tracking and logical_deduction are trained on their smaller sizes),
or not at all, so a file it never saw is read as such.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import EngineError

BBH_TUNED_DEFAULT = "smollm2-135m-bbh"


def bbh_plans(items: int, model, tuned, backend_name: str, dtype: str, out: Path) -> tuple[dict, dict]:
    """{task: plan} for the base model (each with its floor) and for the adapter (empty without one), every
    plan prepared, so a missing data file or a broken chain is refused before any model loads."""
    from engine.runs.plan import EvalSettings, prepare
    from engine.tasks.bbh import ALGORITHMIC_FILES

    base, adapter = {}, {}
    for task in ALGORITHMIC_FILES:
        common = {"task": task, "limit": items, "backend": backend_name, "dtype": dtype}
        try:
            base[task] = prepare(EvalSettings(**common, model=model, floor=True, out=str(out / f"{task}-chain")))
            if tuned:
                adapter[task] = prepare(EvalSettings(**common, model=tuned, out=str(out / f"{task}-chain-tuned")))
        except EngineError as exc:
            raise EngineError(f"the demo's BBH part: {exc} (or pass --bbh-items 0 to leave that part out)") from None
    return base, adapter


def trained_for(tuned) -> set[str]:
    """The BBH task files an adapter was fine-tuned for, from the `engine-adapter.json` `finetune` wrote beside
    it (a shipped adapter's name or an adapter folder); empty when it does not say."""
    from engine.models import adapter_about, known_adapters

    if not tuned:
        return set()
    tasks = adapter_about(known_adapters().get(tuned) or Path(tuned)).get("task", "")
    return {task.strip() for task in tasks.split(",") if task.strip()}


def bbh_rows(base: dict, adapter: dict, trained: set[str]) -> list[dict]:
    """One row per file from the runs' summaries ({task: summary}): chance, floor, both models with the chain,
    the paired test on the shared items, and what the adapter was trained for."""
    from engine.runs.compare import compare_paired
    from engine.tasks.bbh import CODEX_COT, family

    families = {family(task) for task in trained}
    rows = []
    for task, summary in base.items():
        row = {"task": task, "n": summary["n"], "chance": summary.get("chance"),
               "floor": summary["floor"]["accuracy"], "base_chain": summary["accuracy"], "base_ci95": summary["ci95"],
               "base_run": Path(summary["out"]).name, "codex_cot": CODEX_COT[task],
               "trained": "yes" if task in trained else "family" if family(task) in families else "no"}
        tuned = adapter.get(task)
        if tuned is not None:
            result, _, shared = compare_paired(summary["out"], tuned["out"])
            row.update(tuned_chain=tuned["accuracy"], tuned_ci95=tuned["ci95"], tuned_unparsed=tuned["unparsed_rate"],
                       tuned_run=Path(tuned["out"]).name, paired_n=len(shared),
                       mcnemar_p=result["mcnemar"]["p_value"], delta_ci95=result["bootstrap"]["ci95"])
        rows.append(row)
    return rows


def pooled(rows: list[dict], out: Path) -> dict | None:
    """The adapter against the base model over every item of every file at once (exact McNemar, paired bootstrap):
    a few items per file say little one file at a time, all of them together say more."""
    from engine.runs.compare import load_correct
    from engine.scoring.stats import compare_runs

    pairs = [row for row in rows if "tuned_run" in row]
    if not pairs:
        return None
    a, b = [], []
    for row in pairs:
        base, tuned = load_correct(str(out / row["base_run"])), load_correct(str(out / row["tuned_run"]))
        shared = [item for item in base if item in tuned]
        a += [base[item] for item in shared]
        b += [tuned[item] for item in shared]
    result = compare_runs(a, b)
    return {"files": len(pairs), "n": len(a), "base_accuracy": result["accuracy_a"],
            "tuned_accuracy": result["accuracy_b"], "mcnemar_p": result["mcnemar"]["p_value"],
            "delta_ci95": result["bootstrap"]["ci95"]}


def bbh_table(rows: list[dict], together: dict | None, tuned: str | None, items: int) -> str:
    """The report's BBH section: a row per file, then the pooled test."""
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    trained = {"yes": "yes", "family": "its family (fewer objects)", "no": "no"}
    head = f"| BBH file | chance | floor | base + chain | {tuned} + chain | trained for | p (McNemar) | Codex CoT |" \
        if tuned else "| BBH file | chance | floor | base + chain | Codex CoT |"
    lines = [f"BIG-Bench-Hard, the first {items} items of each file, each model with the file's own chain "
             "(accuracy %; floor: the chain with no model; Codex CoT: the BBH paper's 3-shot chain-of-thought on "
             "all 250 items):", "", head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cells = [r["task"].removeprefix("bbh-"), "—" if r["chance"] is None else pct(r["chance"]), pct(r["floor"]),
                 pct(r["base_chain"])]
        if tuned:
            cells += [pct(r["tuned_chain"]), trained[r["trained"]], f"{r['mcnemar_p']:.2g}"]
        lines.append("| " + " | ".join(cells + [pct(r["codex_cot"])]) + " |")
    if together:
        low, high = together["delta_ci95"]
        lines += ["", f"All {together['n']} items of the {together['files']} files together: base + chain "
                  f"{pct(together['base_accuracy'])}%, {tuned} + chain {pct(together['tuned_accuracy'])}%, difference "
                  f"{100 * (together['tuned_accuracy'] - together['base_accuracy']):+.1f} [{100 * low:+.1f}, "
                  f"{100 * high:+.1f}], exact McNemar p = {together['mcnemar_p']:.2g}."]
    return "\n".join(lines)
