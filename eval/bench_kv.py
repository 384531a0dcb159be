"""vLLM's KV cache sized from what the chain holds at one time, against the old worst-case estimate.

The same `decompose` evaluation (default: 128 arithmetic items at depth 3, seed 5, no step cache) runs in a
fresh process twice per repetition, in alternating order (these machines are noisy): once with the cache the
engine now sizes from the run's work (`held_tokens`: one step's output at a typical length), once with
`--kv-cache-mb` set to the worst case the engine used to reserve (every step's `max_tokens` piled into one
sequence, clipped at 30% of RAM). Prints peak RSS, wall time, preemptions and the size of each, checks that the
answers and every step's text are identical, and writes JSON with the command and environment.

    python eval/bench_kv.py [--limit 128] [--depth 3] [--seed 5] [--repeat 1] [--out eval/results/bench]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path


def worst_case_mb(args) -> int:
    """What the engine reserved before: the worst-case work, in bytes for the default model, clipped at 30% of RAM."""
    from engine import EvalSettings, prepare
    from engine.backends.kv_cache import kv_cache_bytes
    from engine.backends.vllm import CPU_MEMORY_SHARE, CPU_BLOCK_SIZE, _total_memory
    from engine.models import resolve_model
    from engine.runs.kv_work import work_of_plan

    plan = prepare(EvalSettings(task="arithmetic", strategy=args.strategy, depth=args.depth, limit=args.limit,
                                seed=args.seed))
    work = work_of_plan(plan, worst_case=True)
    size = kv_cache_bytes(work, resolve_model(None), "float32", 4096, int(CPU_MEMORY_SHARE * _total_memory()),
                          CPU_BLOCK_SIZE)
    return -(-size // 2**20)


def run(args, folder: Path, kv_cache_mb: int | None) -> dict:
    command = [sys.executable, "-m", "engine", "eval", "--task", "arithmetic", "--strategy", args.strategy,
               "--depth", str(args.depth), "--limit", str(args.limit), "--seed", str(args.seed), "--backend", "vllm",
               "--no-cache", "--out", str(folder)] + (["--kv-cache-mb", str(kv_cache_mb)] if kv_cache_mb else [])
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    process_seconds = time.perf_counter() - started
    summary = json.loads((folder / "summary.json").read_text())
    records = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    return {"kv_cache_mb": summary["kv_cache_mb"], "peak_rss_mb": summary["peak_rss_mb"],
            "wall_seconds": summary["wall_seconds"], "process_seconds": round(process_seconds, 1),
            "preemptions": summary.get("preemptions"), "accuracy": summary["accuracy"],
            "prompt_tokens": summary["prompt_tokens"], "completion_tokens": summary["completion_tokens"],
            "answers": {r["id"]: [r["answer"], [s["outputs"] for s in r["steps"]]] for r in records}}


def main() -> None:
    from engine.environment import describe

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strategy", default="decompose")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--limit", type=int, default=128)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", default="eval/results/bench")
    args = parser.parse_args()
    worst = worst_case_mb(args)
    folder = Path("runs") / f"bench-kv-{time.strftime('%Y%m%d-%H%M%S')}"
    rows = []
    for repetition in range(args.repeat):
        order = ("worst", "sized") if repetition % 2 == 0 else ("sized", "worst")
        row = {}
        for name in order:
            row[name] = run(args, folder / f"{name}-{repetition}", worst if name == "worst" else None)
            print(f"{name:5s}: KV {row[name]['kv_cache_mb']:8,.1f} MiB, peak RSS {row[name]['peak_rss_mb']:8,.1f} MiB, "
                  f"generation {row[name]['wall_seconds']} s, process {row[name]['process_seconds']} s, "
                  f"preemptions {row[name]['preemptions']}", flush=True)
        same = sum(row["sized"]["answers"][i] == row["worst"]["answers"].get(i) for i in row["sized"]["answers"])
        row["identical_items"] = f"{same}/{len(row['worst']['answers'])}"
        row["peak_rss sized/worst"] = round(row["sized"]["peak_rss_mb"] / row["worst"]["peak_rss_mb"], 3)
        row["wall sized/worst"] = round(row["sized"]["wall_seconds"] / row["worst"]["wall_seconds"], 3)
        print(f"repetition {repetition}: identical items {row['identical_items']}, peak RSS sized/worst "
              f"{row['peak_rss sized/worst']}, generation time sized/worst {row['wall sized/worst']}")
        for name in ("sized", "worst"):
            row[name].pop("answers")
        rows.append(row)
    result = {
        "command": "python eval/bench_kv.py " + " ".join(sys.argv[1:]), "environment": describe("float32"),
        "eval": f"python -m engine eval --task arithmetic --strategy {args.strategy} --depth {args.depth} --limit "
                f"{args.limit} --seed {args.seed} --backend vllm --no-cache [--kv-cache-mb {worst}]",
        "worst_case_kv_cache_mb": worst, "repetitions": rows,
        "peak_rss_mb sized": statistics.median(r["sized"]["peak_rss_mb"] for r in rows),
        "wall sized/worst": statistics.median(r["wall sized/worst"] for r in rows),
        "targets": "peak RSS <= 4,096 MiB, identical answers, generation time <= 1.05x the worst-case sizing",
    }
    result["met"] = (result["peak_rss_mb sized"] <= 4096 and result["wall sized/worst"] <= 1.05
                     and all(r["identical_items"].split("/")[0] == r["identical_items"].split("/")[1] for r in rows))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"kv-{args.strategy}-d{args.depth}-{args.limit}.json"
    (out / name).write_text(json.dumps(result, indent=2))
    print(f"wrote {out / name}; targets met: {result['met']}")


if __name__ == "__main__":
    main()
