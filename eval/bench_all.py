"""Every performance benchmark, one after another (never two engines at once), and one table of the figures
beside their targets.

    python eval/bench_all.py [--repeat 2] [--lm-eval-limit 200] [--skip lm_eval,scheduler]

Runs eval/bench_chains.py (engine vs raw vLLM, batched vs per-item, self-consistency via n, scaling and memory),
eval/bench_scheduler.py (continuous vs waves vs the ceiling) and eval/bench_lm_eval.py (against
lm-evaluation-harness on the same prompts; needs the `bench` extra), each writing its own JSON under
eval/results/bench/, then prints the table and writes eval/results/bench/summary.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "eval" / "results" / "bench"


def run(script: str, *arguments: str) -> float:
    """Run one benchmark script to completion (its output shown as it goes); its wall seconds."""
    command = [sys.executable, str(ROOT / "eval" / script), *arguments]
    print(f"\n$ {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True)
    return round(time.perf_counter() - start, 1)


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def rows_from_results(scheduler_file: str, lm_eval_file: str) -> list[tuple[str, str, str, str]]:
    """(figure, measured, target, met) for every figure present in the JSON files."""
    rows = []
    chains = load("chains.json") or {}
    for part, key, label in (("overhead", "engine/raw", "engine / raw vllm.LLM.generate, same prompts"),
                             ("batched", "per_item/batched", "3-step chain: one item at a time / batched"),
                             ("votes", "k/one", "self-consistency k=8 via n / one sample")):
        if part in chains:
            figure = chains[part][key]
            rows.append((label, f"{figure['median']:.2f} ({figure['min']:.2f}-{figure['max']:.2f})",
                         chains[part]["target"], str(chains[part]["met"])))
    for key, figure in chains.get("startup", {}).items():  # every ratio it holds (work and repetitions aside)
        if isinstance(figure, dict) and "median" in figure:
            rows.append((f"start-up to the first result, {key}", f"{figure['median']:.2f} ({figure['min']:.2f}-"
                         f"{figure['max']:.2f})", "", ""))
    if "scaling" in chains:
        part = chains["scaling"]
        sizes = "/".join(str(r["items"]) for r in part["rows"])
        rows.append((f"scaling {sizes} items: (seconds ratio) / (tokens ratio)", f"{part['seconds_per_token_ratio']:.2f}",
                     "<= 1", str(part["met"]["seconds_per_token_ratio"])))
        rows.append((f"peak RSS {part['rows'][-1]['items']} items / {part['rows'][0]['items']} items",
                     f"{part['peak_rss_ratio']:.2f}", "<= 1.5", str(part["met"]["peak_rss_ratio"])))
    scheduler = load(scheduler_file)
    if scheduler:
        for key, target in (("continuous/waves", 0.6), ("continuous/ceiling", 1.25)):
            figure = scheduler[key]
            rows.append((f"{key} (decompose d{scheduler['depth']}, {scheduler['limit']} items)",
                         f"{figure['median']:.2f} ({figure['min']:.2f}-{figure['max']:.2f})", f"<= {target}",
                         str(figure["median"] <= target)))
    lm_eval = load(lm_eval_file)
    if lm_eval:
        for name, figure in lm_eval.get("table", {}).items():
            if figure.get("target"):
                rows.append((f"lm-eval GSM8K {lm_eval['limit']} items, {name}",
                             f"{figure['median']:.3f} ({figure['min']:.3f}-{figure['max']:.3f})", figure["target"],
                             str(figure["met"])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--scheduler-limit", type=int, default=64)
    parser.add_argument("--lm-eval-limit", type=int, default=200)
    parser.add_argument("--skip", default="", help="comma list of chains, scheduler, lm_eval")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    seconds = {}
    if "chains" not in skip:
        seconds["chains"] = run("bench_chains.py", "--repeat", str(args.repeat))
    if "scheduler" not in skip:
        seconds["scheduler"] = run("bench_scheduler.py", "--limit", str(args.scheduler_limit), "--repeat",
                                   str(args.repeat))
    if "lm_eval" not in skip:
        seconds["lm_eval"] = run("bench_lm_eval.py", "--limit", str(args.lm_eval_limit), "--repeat", "1")
    rows = rows_from_results(f"scheduler-decompose-d3-{args.scheduler_limit}.json",
                             f"lm-eval-gsm8k-{args.lm_eval_limit}.json")
    print("\n| figure | measured: median (spread) | target | met |\n|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps(
        {"command": "python eval/bench_all.py " + " ".join(sys.argv[1:]), "bench_seconds": seconds,
         "rows": [dict(zip(("figure", "measured", "target", "met"), row)) for row in rows]}, indent=2))
    print(f"wrote {RESULTS / 'summary.json'}")


if __name__ == "__main__":
    main()
