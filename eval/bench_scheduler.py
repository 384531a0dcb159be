"""Continuous chain scheduling against waves, and against the ceiling, on one vLLM engine in one process.

For each repetition, in alternating order (these machines are noisy): the same `decompose` evaluation (default
64 arithmetic items at depth 3, no step cache, vLLM's prefix cache emptied before each run) under
`--scheduler waves` and `--scheduler continuous`, then
the ceiling: one flat batch of as many requests as there were items, each forced to generate the same number of
tokens (`ignore_eos`), so that together they generate what the chain generated, with no chain in the way.
Prints a table of wall times with the ratios continuous/waves and continuous/ceiling (median and spread over
the repetitions), checks that both schedulers wrote identical answers, and writes JSON.

    python eval/bench_scheduler.py [--limit 64] [--depth 3] [--repeat 2] [--out eval/results/bench]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def flat_batch(backend, requests: int, tokens: int) -> float:
    """Seconds for one call generating `tokens` tokens for each of `requests` short prompts."""
    from vllm import SamplingParams

    prompts = [{"prompt_token_ids": backend.tokenizer(f"Item {i}: count upwards.")["input_ids"]} for i in range(requests)]
    params = SamplingParams(max_tokens=tokens, min_tokens=tokens, ignore_eos=True, temperature=0.0)
    start = time.perf_counter()
    backend.llm.generate(prompts, params, use_tqdm=False)
    return time.perf_counter() - start


def main() -> None:
    from engine.backends.vllm import VLLMBackend
    from engine import EvalSettings, run_eval
    from engine.models import resolve_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--strategy", default="decompose")
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", default="eval/results/bench")
    args = parser.parse_args()
    backend = VLLMBackend(resolve_model(args.model), dtype="float32")
    runs_folder = Path("runs") / f"bench-scheduler-{time.strftime('%Y%m%d-%H%M%S')}"
    rows, answers = [], {}
    for repetition in range(args.repeat):
        order = ("waves", "continuous") if repetition % 2 == 0 else ("continuous", "waves")
        row = {}
        for scheduler in order:
            folder = runs_folder / f"{scheduler}-{repetition}"
            # every run starts from an empty prefix cache: the same items' prompts, left cached by the run before,
            # served 96,000 of 111,962 prompt tokens instead of 58,368 and halved a 256-item run (274 s to 141 s)
            backend.llm.reset_prefix_cache()
            summary = run_eval(EvalSettings(task="arithmetic", strategy=args.strategy, depth=args.depth,
                                            limit=args.limit, scheduler=scheduler, no_cache=True, out=str(folder)),
                               backend=backend, progress=False)
            row[scheduler] = summary["wall_seconds"]
            row[f"{scheduler}_tokens"] = summary["completion_tokens"]
            # the ceiling generates as many tokens from short prompts: the chain's prompts are what it leaves out
            row[f"{scheduler}_prompt_tokens"] = summary["prompt_tokens"]
            row[f"{scheduler}_cached_prompt_tokens"] = summary["prefix_cache"]["cached_prompt_tokens"]
            records = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
            # by id: samples.jsonl is in the order items finished, which is the scheduler's business
            answers[(scheduler, repetition)] = tuple(sorted((r["id"], r["answer"]) for r in records))
        per_item = max(1, round(row["continuous_tokens"] / args.limit))
        row["ceiling"] = round(flat_batch(backend, args.limit, per_item), 2)
        row["continuous/waves"] = round(row["continuous"] / row["waves"], 3)
        row["continuous/ceiling"] = round(row["continuous"] / row["ceiling"], 3)
        rows.append(row)
        print(f"rep {repetition}: waves {row['waves']} s, continuous {row['continuous']} s, "
              f"ceiling {row['ceiling']} s ({args.limit} x {per_item} tokens); "
              f"continuous/waves {row['continuous/waves']}, continuous/ceiling {row['continuous/ceiling']}", flush=True)
    backend.close()
    identical = len(set(answers.values())) == 1
    from engine.environment import describe

    result = {"command": "python eval/bench_scheduler.py " + " ".join(sys.argv[1:]), "model": args.model,
              "strategy": args.strategy, "depth": args.depth, "limit": args.limit, "identical_answers": identical,
              "repetitions": rows, "environment": describe("float32")}
    for ratio in ("continuous/waves", "continuous/ceiling"):
        values = [row[ratio] for row in rows]
        result[ratio] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    print("\n| ratio | median | spread |\n|---|---|---|")
    for ratio in ("continuous/waves", "continuous/ceiling"):
        part = result[ratio]
        print(f"| {ratio} | {part['median']:.2f} | {part['min']:.2f}-{part['max']:.2f} |")
    print(f"identical answers under both schedulers: {identical}")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    target = Path(args.out) / f"scheduler-{args.strategy}-d{args.depth}-{args.limit}.json"
    target.write_text(json.dumps(result, indent=2))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
