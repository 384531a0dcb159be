"""Start-up time and generation throughput of the hf and vllm backends, side by side in one run.

    python eval/bench_backends.py [--prompts 64] [--max-tokens 64] [--backends hf,vllm,vllm:float32]
                                  [--model smollm2-135m] [--out eval/results/backends.json]

A backend is NAME or NAME:DTYPE. Every backend gets the same 64 chat prompts (greedy, up to --max-tokens new tokens each) in one `generate`
call. Figures are reported as ratios to hf as well, because these machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from engine.backends import close_backend, load_backend
from engine.synthetic import arithmetic
from engine.generation import GenerationRequest
from engine.sampling import SamplingSettings


def prompts(count: int, max_tokens: int) -> list[GenerationRequest]:
    items = arithmetic.generate(count, 3, seed=42)
    sampling = SamplingSettings(max_tokens=max_tokens)
    return [GenerationRequest.chat([{"role": "user", "content": f"{e.question} Let's think step by step."}], sampling)
            for e in items]


def measure(spec: str, model: str, requests: list[GenerationRequest]) -> dict:
    name, _, dtype = spec.partition(":")
    start = time.perf_counter()
    backend = load_backend(name, model, dtype=dtype or "auto")
    startup = time.perf_counter() - start
    backend.generate(requests[:2])  # warm-up, not counted
    start = time.perf_counter()
    results = backend.generate(requests)
    seconds = time.perf_counter() - start
    completion = sum(r.completion_tokens for r in results)
    prompt = sum(r.prompt_tokens for r in results)
    dtype = getattr(backend, "dtype", dtype or "auto")
    close_backend(backend)
    return {"backend": spec, "dtype": dtype, "startup_seconds": round(startup, 1), "generate_seconds": round(seconds, 2),
            "prompts": len(requests), "prompt_tokens": prompt, "completion_tokens": completion,
            "completion_tokens_per_second": round(completion / seconds, 1),
            "texts": [r.text for r in results]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--backends", default="hf,vllm,vllm:float32")
    parser.add_argument("--out", default="eval/results/backends.json")
    args = parser.parse_args()
    requests = prompts(args.prompts, args.max_tokens)
    rows = [measure(name, args.model, requests) for name in args.backends.split(",")]
    base = rows[0]
    for row in rows:
        row["throughput_vs_first"] = round(row["completion_tokens_per_second"] / base["completion_tokens_per_second"], 2)
    print(f"{'backend':14s} {'start-up s':>10s} {'generate s':>10s} {'out tokens':>10s} {'tokens/s':>9s} "
          f"{'vs first':>8s} {'same text as first':>18s}")
    for row in rows:
        row["identical_texts_vs_first"] = sum(a == b for a, b in zip(base["texts"], row["texts"]))
        print(f"{row['backend']:14s} {row['startup_seconds']:10.1f} {row['generate_seconds']:10.2f} "
              f"{row['completion_tokens']:10d} {row['completion_tokens_per_second']:9.1f} "
              f"{row['throughput_vs_first']:8.2f} {row['identical_texts_vs_first']:>15d}/{len(requests)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for row in rows:
        row.pop("texts")
    out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "rows": rows,
                               "max_tokens": args.max_tokens}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":  # vLLM starts worker processes: the guard is required
    main()
