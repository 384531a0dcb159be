"""The README's "Problems written by others: BIG-Bench-Hard" table, from the run folders of the commands below.

Rows per BBH file (the twelve algorithmic files in ../shared/data): chance, the chain's floor (no model), the base model's best prompt-only strategy (`direct`
or `fewshot-cot` with the paper's exemplars, whichever scores higher on that file), the base model with the
file's chain, the fine-tuned model with the chain, Codex's 3-shot chain-of-thought figure from the BBH paper,
and the paired tests (McNemar, bootstrap) of the fine-tuned chain against the base model's best. Every row is
on the same 250 items. The compute is each run's requests, tokens and wall time on this machine.

    T=bbh-multistep_arithmetic_two,bbh-boolean_expressions,bbh-navigate,bbh-tracking_shuffled_objects_three_objects,bbh-tracking_shuffled_objects_five_objects,bbh-tracking_shuffled_objects_seven_objects
    python -m engine eval --task $T --backend null --out runs/bbh/floor
    python -m engine eval --task $T --strategy direct,fewshot-cot --out runs/bbh/base
    python -m engine eval --task $T --out runs/bbh/chain-base
    python -m engine eval --task $T --model runs/ft-bbh-900/model --out runs/bbh900/chain-tuned
    python eval/bbh_table.py runs/bbh900 --out eval/results/bbh-part1.json

(runs/bbh900 holds base/, floor/ and chain-base/ of runs/bbh, as links, and the 900-step adapter's chain-tuned/.)

The other six files (part 2: no adapter trained for them yet, so their rows stop at the base model's chain):

    T2=bbh-object_counting,bbh-dyck_languages,bbh-word_sorting,bbh-logical_deduction_three_objects,bbh-logical_deduction_five_objects,bbh-logical_deduction_seven_objects
    python -m engine eval --task $T2 --backend null --out runs/bbh2/floor
    python -m engine eval --task $T2 --strategy direct --out runs/bbh2/base
    python -m engine eval --task $T2 --out runs/bbh2/chain-base
    python eval/bbh_table.py runs/bbh900 runs/bbh2 --out eval/results/bbh-twelve.json --plot eval/results/bbh-twelve.png

The tracking files with the one-fact chain (prompts/bbh-tracking/chain.py since 914c572) and an adapter trained
on tracking alone (the README's "Tracking, one fact a step"):

    T3=bbh-tracking_shuffled_objects_three_objects,bbh-tracking_shuffled_objects_five_objects,bbh-tracking_shuffled_objects_seven_objects
    python -m engine eval --task $T3 --backend null --out runs/track/floor
    python -m engine eval --task $T3 --out runs/track/chain-base   # five and seven; three is finetune's own base run
    python eval/bbh_table.py runs/bbhtrack --out eval/results/bbh-tracking-one-fact.json

(`finetune`'s own before/after runs, `DIR/test/TASK/{base,tuned}/all`, are the same chain-base and chain-tuned
runs on the same items, and serve as well.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.tasks.bbh import ALGORITHMIC_FILES as FILES, CODEX_COT


def _summary(folder: Path) -> dict | None:
    path = folder / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def _compute(summary: dict) -> dict:
    return {key: summary.get(key) for key in ("backend_requests", "prompt_tokens", "completion_tokens", "wall_seconds")}


def row(runs: Path, task: str) -> dict | None:
    from engine.runs.compare import compare_paired

    base = {s: _summary(runs / "base" / f"{task}-{s}") for s in ("direct", "fewshot-cot")}
    chain_base, chain_tuned = _summary(runs / "chain-base" / f"{task}-default"), _summary(runs / "chain-tuned" / f"{task}-default")
    floor = _summary(runs / "floor" / f"{task}-default")
    if base["direct"] is None or chain_base is None or floor is None:
        return None
    base = {s: summary for s, summary in base.items() if summary is not None}  # fewshot-cot where it was run
    best = max(base, key=lambda s: base[s]["accuracy"])
    result, shared = None, range(chain_base["n"])
    if chain_tuned is not None:  # a file no adapter was trained for yet has its base rows only
        result, _, shared = compare_paired(str(runs / "base" / f"{task}-{best}"),
                                           str(runs / "chain-tuned" / f"{task}-default"))
    return {
        "task": task, "n": len(shared), "chance": chain_base.get("chance"),
        "floor": floor["accuracy"], "chain": chain_base["strategy"],
        "base_direct": base["direct"]["accuracy"],
        "base_fewshot_cot": base["fewshot-cot"]["accuracy"] if "fewshot-cot" in base else None,
        "base_best": base[best]["accuracy"], "base_best_strategy": best,
        "base_chain": chain_base["accuracy"], "tuned_chain": chain_tuned["accuracy"] if chain_tuned else None,
        "tuned_unparsed": chain_tuned["unparsed_rate"] if chain_tuned else None, "codex_cot": CODEX_COT[task],
        "mcnemar_p": result["mcnemar"]["p_value"] if result else None,
        "bootstrap": result["bootstrap"] if result else None,
        "compute": {"base_best": _compute(base[best]), "base_chain": _compute(chain_base),
                    "tuned_chain": _compute(chain_tuned) if chain_tuned else None},
    }


def markdown(rows: list[dict]) -> str:
    pct = lambda x: "" if x is None else f"{100 * x:.1f}"  # noqa: E731
    lines = ["| BBH file | chance | floor | base best | base + chain | tuned + chain | Codex CoT | tuned - base best, p (McNemar) | tuned (else base) + chain: requests, tokens, s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["compute"]["tuned_chain"] or r["compute"]["base_chain"]
        tuned = "not trained yet" if r["tuned_chain"] is None else f"**{pct(r['tuned_chain'])}**"
        versus = "" if r["tuned_chain"] is None else \
            f"{100 * (r['tuned_chain'] - r['base_best']):+.1f}, p = {r['mcnemar_p']:.2g}"
        lines.append(f"| {r['task'].removeprefix('bbh-')} | {pct(r['chance'])} | {pct(r['floor'])} | "
                     f"{pct(r['base_best'])} ({r['base_best_strategy']}) | {pct(r['base_chain'])} | "
                     f"{tuned} | {pct(r['codex_cot'])} | {versus} | "
                     f"{c['backend_requests']}, {c['prompt_tokens'] + c['completion_tokens']:,}, {c['wall_seconds']:.0f} |")
    tuned = [r for r in rows if r["tuned_chain"] is not None]
    if tuned:
        mean = sum(r["tuned_chain"] for r in tuned) / len(tuned)
        lines.append(f"\nmean of the fine-tuned chain over {len(tuned)} files: {100 * mean:.1f}%")
    return "\n".join(lines)


def plot(rows: list[dict], path: str) -> dict:
    """Grouped bars per file (floor, base best, base + chain, tuned + chain), Codex CoT and chance as marks.

    A zero is drawn as a stub, so a missing bar always means "not run", never "zero". Returns what each series
    drew, {series: {file: percent}}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = (("floor", "floor (no model)", "#bbbbbb"), ("base_best", "base best prompt-only", "#7fa6d6"),
              ("base_chain", "base + chain", "#f2b36b"), ("tuned_chain", "fine-tuned + chain", "#2f7d32"))
    width, drawn = 0.8 / len(series), {}
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(rows) + 2), 4.2))
    for i, (key, label, colour) in enumerate(series):
        xs = [n + (i - (len(series) - 1) / 2) * width for n, r in enumerate(rows) if r[key] is not None]
        ys = [max(100 * r[key], 0.4) for r in rows if r[key] is not None]
        ax.bar(xs, ys, width, label=label, color=colour)
        drawn[key] = {r["task"]: round(100 * r[key], 1) for r in rows if r[key] is not None}
    ax.scatter(range(len(rows)), [100 * r["codex_cot"] for r in rows], marker="_", s=500, color="black",
               zorder=3, label="Codex CoT (BBH paper)")
    chance = [(n, 100 * r["chance"]) for n, r in enumerate(rows) if r["chance"] is not None]
    if chance:
        ax.scatter(*zip(*chance), marker="x", color="#c62828", zorder=3, label="chance")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([_short(r["task"]) for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("accuracy on all 250 items (%)")
    ax.set_ylim(0, 118)  # headroom for the legend above the 100% line
    ax.set_yticks(range(0, 101, 20))
    ax.legend(fontsize=7, ncol=6, loc="upper center", frameon=False)
    ax.set_title("BIG-Bench-Hard, SmolLM2-135M-Instruct", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def _short(task: str) -> str:
    name = task.removeprefix("bbh-")
    for long, short in (("tracking_shuffled_objects_", "tracking "), ("logical_deduction_", "deduction "),
                        ("_objects", ""), ("multistep_arithmetic_two", "multistep arithmetic")):
        name = name.replace(long, short)
    return name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="folders holding base/, chain-base/, floor/ and chain-tuned/ "
                                                 "(where trained); each file's runs are taken from the first that has them")
    parser.add_argument("--out", help="write the rows as JSON here")
    parser.add_argument("--plot", help="draw the accuracy by file into this PNG")
    args = parser.parse_args()
    rows = []
    for task in FILES:
        found = next((r for r in (row(Path(folder), task) for folder in args.runs) if r is not None), None)
        if found is not None:
            rows.append(found)
    print(markdown(rows))
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "runs": args.runs}, indent=2))
        print(f"wrote {args.out}")
    if args.plot:
        plot(rows, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
