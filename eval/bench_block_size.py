"""KV-cache block size on vLLM's CPU build: prefix caching reuses whole blocks, so short step prompts need small ones.

Runs the same evaluation (default: the shipped fine-tuned model's stepwise chain, 50 items at depth 8) on two
engines, one with vLLM's CPU default block size (128) and one with the engine's (32), one after the other in
one process, and prints wall time, prompt tokens and whether the answers are identical. Writes JSON.

    python eval/bench_block_size.py [--model smollm2-135m-stepwise] [--depth 8] [--limit 50]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    from engine.backends.vllm import CPU_BLOCK_SIZE, VLLMBackend
    from engine import EvalSettings, run_eval
    from engine.models import resolve_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-stepwise")
    parser.add_argument("--strategy", default="stepwise")
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--out", default="runs/bench-block-size")
    args = parser.parse_args()
    path = resolve_model(args.model)
    rows = []
    for block_size in (128, CPU_BLOCK_SIZE):
        start = time.perf_counter()
        backend = VLLMBackend(path, dtype="float32", block_size=block_size)
        started = time.perf_counter() - start
        folder = Path(args.out) / f"block-{block_size}"
        summary = run_eval(EvalSettings(task="arithmetic", strategy=args.strategy, depth=args.depth, limit=args.limit,
                                        out=str(folder)), backend=backend, progress=False)
        backend.close()
        answers = [json.loads(line)["answer"] for line in (folder / "samples.jsonl").read_text().splitlines()]
        rows.append({"block_size": block_size, "start_seconds": round(started, 1), "wall_seconds": summary["wall_seconds"],
                     "prompt_tokens": summary["prompt_tokens"], "accuracy": summary["accuracy"], "answers": answers})
        print(f"block {block_size:4d}: start {started:.1f} s, run {summary['wall_seconds']} s, "
              f"{summary['prompt_tokens']} prompt tokens, accuracy {100 * summary['accuracy']:.1f}%", flush=True)
    same = rows[0]["answers"] == rows[1]["answers"]
    ratio = rows[0]["wall_seconds"] / rows[1]["wall_seconds"]
    print(f"block {CPU_BLOCK_SIZE} is {ratio:.2f}x as fast as 128; identical answers: {same}")
    result = {"model": args.model, "strategy": args.strategy, "depth": args.depth, "limit": args.limit,
              "speedup": round(ratio, 2), "identical_answers": same,
              "runs": [{k: v for k, v in r.items() if k != "answers"} for r in rows]}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "result.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
