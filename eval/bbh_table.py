"""The README's "Problems written by others: BIG-Bench-Hard" table, from the run folders of the commands below.

Rows per BBH file: chance, the chain's floor (no model), the base model's best prompt-only strategy (`direct`
or `fewshot-cot` with the paper's exemplars, whichever scores higher on that file), the base model with the
file's chain, the fine-tuned model with the chain, Codex's 3-shot chain-of-thought figure from the BBH paper,
and the paired tests (McNemar, bootstrap) of the fine-tuned chain against the base model's best. Every row is
on the same 250 items. The compute is each run's requests, tokens and wall time on this machine.

    T=bbh-multistep_arithmetic_two,bbh-boolean_expressions,bbh-navigate,bbh-tracking_shuffled_objects_three_objects,bbh-tracking_shuffled_objects_five_objects,bbh-tracking_shuffled_objects_seven_objects
    python -m engine eval --task $T --backend null --out runs/bbh/floor
    python -m engine eval --task $T --strategy direct,fewshot-cot --out runs/bbh/base
    python -m engine eval --task $T --out runs/bbh/chain-base
    python -m engine eval --task $T --model runs/ft-bbh/model --out runs/bbh/chain-tuned
    python eval/bbh_table.py runs/bbh --out eval/results/bbh-part1.json

(`finetune`'s own before/after runs, `DIR/test/TASK/{base,tuned}/all`, are the same chain-base and chain-tuned
runs on the same items, and serve as well.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CODEX_COT = {  # BBH paper (Suzgun et al. 2022), Table: code-davinci-002, 3-shot chain-of-thought
    "bbh-multistep_arithmetic_two": 0.476, "bbh-boolean_expressions": 0.928, "bbh-navigate": 0.964,
    "bbh-tracking_shuffled_objects_three_objects": 0.784, "bbh-tracking_shuffled_objects_five_objects": 0.896,
    "bbh-tracking_shuffled_objects_seven_objects": 0.856,
}
FILES = tuple(CODEX_COT)


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
    if chain_tuned is None or base["direct"] is None or chain_base is None or floor is None:
        return None
    base = {s: summary for s, summary in base.items() if summary is not None}  # fewshot-cot where it was run
    best = max(base, key=lambda s: base[s]["accuracy"])
    result, _, shared = compare_paired(str(runs / "base" / f"{task}-{best}"), str(runs / "chain-tuned" / f"{task}-default"))
    return {
        "task": task, "n": len(shared), "chance": chain_base.get("chance"),
        "floor": floor["accuracy"], "chain": chain_tuned["strategy"],
        "base_direct": base["direct"]["accuracy"],
        "base_fewshot_cot": base["fewshot-cot"]["accuracy"] if "fewshot-cot" in base else None,
        "base_best": base[best]["accuracy"], "base_best_strategy": best,
        "base_chain": chain_base["accuracy"], "tuned_chain": chain_tuned["accuracy"],
        "tuned_unparsed": chain_tuned["unparsed_rate"], "codex_cot": CODEX_COT[task],
        "mcnemar_p": result["mcnemar"]["p_value"], "bootstrap": result["bootstrap"],
        "compute": {"base_best": _compute(base[best]), "base_chain": _compute(chain_base),
                    "tuned_chain": _compute(chain_tuned)},
    }


def markdown(rows: list[dict]) -> str:
    pct = lambda x: "" if x is None else f"{100 * x:.1f}"  # noqa: E731
    lines = ["| BBH file | chance | floor | base best | base + chain | tuned + chain | Codex CoT | tuned - base best, p (McNemar) | tuned: requests, tokens, s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["compute"]["tuned_chain"]
        lines.append(f"| {r['task'].removeprefix('bbh-')} | {pct(r['chance'])} | {pct(r['floor'])} | "
                     f"{pct(r['base_best'])} ({r['base_best_strategy']}) | {pct(r['base_chain'])} | "
                     f"**{pct(r['tuned_chain'])}** | {pct(r['codex_cot'])} | "
                     f"{100 * (r['tuned_chain'] - r['base_best']):+.1f}, p = {r['mcnemar_p']:.2g} | "
                     f"{c['backend_requests']}, {c['prompt_tokens'] + c['completion_tokens']:,}, {c['wall_seconds']:.0f} |")
    if rows:
        mean = sum(r["tuned_chain"] for r in rows) / len(rows)
        lines.append(f"\nmean of the fine-tuned chain over {len(rows)} files: {100 * mean:.1f}%")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", help="the folder holding base/, chain-base/ and chain-tuned/")
    parser.add_argument("--out", help="write the rows as JSON here")
    args = parser.parse_args()
    rows = [r for r in (row(Path(args.runs), task) for task in FILES) if r is not None]
    print(markdown(rows))
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "runs": args.runs}, indent=2))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
