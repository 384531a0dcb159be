"""Chains on vLLM against what users would run instead, each figure a ratio of runs made side by side.

    python eval/bench_chains.py [--only overhead,batched,votes,scaling] [--repeat 3] [--out eval/results/bench]

- overhead: the engine's `generate` against one raw `vllm.LLM.generate` call on the same token ids and settings
  (64 rendered `cot` prompts, greedy, fp32), on one engine, order alternated. Target ≤ 1.05.
- batched: a 3-step chain (eval/chains/three_steps.py) over 32 items in waves, against the same chain run one
  item at a time as per-example loops do; identical greedy text is checked. Target ≥ 20× faster.
- votes: self-consistency with k = 8 through the backend's `n` (one prompt, 8 completions) against one sample,
  `cot` over 32 items. Target ≤ 3× the time.
- startup: a fresh process to its first result with vLLM's fixed share of RAM for the KV cache against a cache
  sized for the work (which also skips the CPU build's warm-up pass), and vLLM's engine in this process (the
  CPU default) against processes of its own: seconds and peak RSS.
- scaling: 64, 256 and 1,024 items of the 3-step chain, each `run_eval` in a process of its own with the same
  KV cache size, so that peak memory compares what the run holds (records stream to disk). Targets: seconds
  grow no faster than tokens generated; peak RSS at 1,024 ≤ 1.5× that at 64.

Every figure is printed as a table (median and spread over repetitions) and written to JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAIN = f"{ROOT}/eval/chains/three_steps.py:three_steps"
SCALING_KV = (256, 160, 0)
"""The KV work every scaling run's engine is sized for (sequences, tokens each, shared), whatever its size."""


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3),
            "values": [round(v, 3) for v in values]}


def states(count: int, depth: int = 3):
    from engine.chains.strategies import initial_state
    from engine.tasks.spec import load_examples, load_spec

    spec, base = load_spec("arithmetic")
    return spec, [initial_state(e, spec, []) for e in load_examples(spec, base, count, depth, 0)]


def timed(function) -> tuple[float, object]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def overhead(backend, repeat: int, count: int = 64) -> dict:
    """Engine generate / raw LLM.generate on the same `count` first prompts of `cot`."""
    from vllm import SamplingParams

    from engine.backends.formatting import prompt_token_ids, vllm_sampling_kwargs
    from engine.chains.scheduler import first_request
    from engine.chains.strategies import build_chain

    spec, items = states(count)
    chain = build_chain("cot", spec)
    requests = [first_request(chain, s) for s in items]
    ids = [{"prompt_token_ids": prompt_token_ids(r, backend.tokenizer)} for r in requests]
    params = SamplingParams(**vllm_sampling_kwargs(requests[0].sampling))
    backend.llm.generate(ids, params, use_tqdm=False)  # warm-up of the whole batch's shapes, not counted
    ratios, rows = [], []
    for rep in range(repeat):
        order = ("engine", "raw") if rep % 2 == 0 else ("raw", "engine")
        seconds = {}
        for who in order:
            if who == "engine":
                seconds[who], results = timed(lambda: backend.generate(requests))
                engine_text = [r.text for r in results]
            else:
                seconds[who], outputs = timed(lambda: backend.llm.generate(ids, params, use_tqdm=False))
                raw_text = [o.outputs[0].text for o in outputs]
        rows.append({**{k: round(v, 2) for k, v in seconds.items()}, "identical_text": engine_text == raw_text})
        ratios.append(seconds["engine"] / seconds["raw"])
    return {"prompts": len(requests), "repetitions": rows, "engine/raw": spread(ratios), "target": "<= 1.05",
            "met": statistics.median(ratios) <= 1.05}


def batched(backend, repeat: int, count: int = 32) -> dict:
    """The 3-step chain over `count` items in waves / one item at a time."""
    from engine.chains.custom import load_chain
    from engine.chains.scheduler import ExampleRun, run_all

    spec, items = states(count)
    chain = load_chain(CHAIN, spec)
    ratios, rows = [], []
    for rep in range(repeat):
        order = ("batched", "per_item") if rep % 2 == 0 else ("per_item", "batched")
        seconds, texts = {}, {}
        for who in order:
            if who == "batched":
                seconds[who], runs = timed(lambda: run_all(chain, [ExampleRun(dict(s)) for s in items], backend))
            else:
                seconds[who], runs = timed(lambda: [run_all(chain, [ExampleRun(dict(s))], backend)[0] for s in items])
            texts[who] = [[r.outputs for r in run.records] for run in runs]
        rows.append({**{k: round(v, 2) for k, v in seconds.items()},
                     "identical_text": texts["batched"] == texts["per_item"]})
        ratios.append(seconds["per_item"] / seconds["batched"])
    return {"items": count, "repetitions": rows, "per_item/batched": spread(ratios), "target": ">= 20",
            "met": statistics.median(ratios) >= 20, "identical_text": all(r["identical_text"] for r in rows)}


def votes(backend, repeat: int, count: int = 32, k: int = 8) -> dict:
    """Self-consistency over `cot` with k samples through `n` / one sample, both sampled and seeded."""
    from engine.chains.scheduler import ExampleRun, run_all
    from engine.chains.strategies import build_chain

    spec, items = states(count, depth=2)
    sampled_one = build_chain("cot", spec).with_samples(1, 0.7, seed=0)
    voted = build_chain("cot", spec, samples=k, temperature=0.7)  # one request per item, n = k
    ratios, rows = [], []
    for rep in range(repeat):
        order = ("one", "k") if rep % 2 == 0 else ("k", "one")
        seconds, tokens = {}, {}
        for who in order:
            chain = sampled_one if who == "one" else voted
            seconds[who], runs = timed(lambda: run_all(chain, [ExampleRun(dict(s)) for s in items], backend))
            tokens[who] = sum(r.completion_tokens for run in runs for r in run.records)
        rows.append({**{k_: round(v, 2) for k_, v in seconds.items()}, "tokens_one": tokens["one"],
                     "tokens_k": tokens["k"]})
        ratios.append(seconds["k"] / seconds["one"])
    return {"items": count, "k": k, "repetitions": rows, "k/one": spread(ratios), "target": "<= 3",
            "met": statistics.median(ratios) <= 3}


SCALING_CHILD = """
import json, sys
from engine.backends.vllm import VLLMBackend
from engine import EvalSettings, run_eval
from engine.backends.kv_cache import KVWork
from engine.models import resolve_model
if __name__ == "__main__":
    limit, out, kv = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    backend = VLLMBackend(resolve_model(None), dtype="float32", kv_work=KVWork(*kv))
    summary = run_eval(EvalSettings(task="arithmetic", chain=sys.argv[4], depth=3, limit=limit, no_cache=True,
                                    out=out), backend=backend, progress=False)
    backend.close()
    print(json.dumps({k: summary[k] for k in ("n", "wall_seconds", "completion_tokens", "peak_rss_mb",
                                              "accuracy", "tokens_per_second")}))
"""


def scaling(sizes: list[int], folder: Path) -> dict:
    """Each size in its own process, the same KV cache: seconds and tokens, peak RSS."""
    rows = []
    for size in sizes:
        out = folder / f"scaling-{size}"
        done = subprocess.run([sys.executable, "-c", SCALING_CHILD, str(size), str(out), json.dumps(SCALING_KV), CHAIN],
                              capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(f"scaling run of {size} items failed:\n{done.stderr[-3000:]}")
        rows.append({"items": size, **json.loads(done.stdout.strip().splitlines()[-1])})
        print(f"  scaling {size}: {rows[-1]}", flush=True)
    first, last = rows[0], rows[-1]
    time_ratio = last["wall_seconds"] / first["wall_seconds"]
    token_ratio = last["completion_tokens"] / first["completion_tokens"]
    memory_ratio = last["peak_rss_mb"] / first["peak_rss_mb"]
    return {"rows": rows, "seconds_ratio": round(time_ratio, 2), "tokens_ratio": round(token_ratio, 2),
            "seconds_per_token_ratio": round(time_ratio / token_ratio, 3), "peak_rss_ratio": round(memory_ratio, 3),
            "targets": {"seconds_per_token_ratio": "<= 1 (cost grows no faster than tokens)", "peak_rss_ratio": "<= 1.5"},
            "met": {"seconds_per_token_ratio": time_ratio / token_ratio <= 1.0, "peak_rss_ratio": memory_ratio <= 1.5}}


STARTUP_CHILD = """
import json, sys, time
start = time.perf_counter()
import vllm  # noqa: F401
imported = time.perf_counter()
from engine.backends.vllm import VLLMBackend
from engine.environment import peak_rss_mb
from engine.generation import GenerationRequest
from engine.backends.kv_cache import KVWork
from engine.models import resolve_model
from engine.sampling import SamplingSettings
if __name__ == "__main__":
    work = KVWork(*json.loads(sys.argv[1])) if sys.argv[1] != "null" else None
    backend = VLLMBackend(resolve_model(None), dtype="float32", kv_work=work)
    ready = time.perf_counter()
    backend.generate([GenerationRequest(prompt="Start with 3. Add 4. What is the result?",
                                        sampling=SamplingSettings(max_tokens=8))])
    first = time.perf_counter()
    peak = peak_rss_mb()
    backend.close()
    print(json.dumps({"import_s": round(imported - start, 2), "engine_s": round(ready - imported, 2),
                      "first_request_s": round(first - start, 2), "peak_rss_mb": peak,
                      "kv_cache_mb": round((backend.kv_cache_bytes or 0) / 2**20, 1)}))
"""


STARTUP_VARIANTS = ("share", "sized", "processes")
"""share: vLLM's fixed 30%-of-RAM KV cache; sized: one sized for the work; processes: sized, with vLLM's engine in
processes of its own (VLLM_ENABLE_V1_MULTIPROCESSING=1) instead of this one, as before the backend's CPU default."""
STARTUP_RATIOS = (("sized/share", "sized", "share"), ("in-process/processes", "sized", "processes"))
"""(label, numerator, denominator) of each start-up figure, for seconds to the first result and peak RSS."""


def startup(repeat: int, work=(60, 464, 27)) -> dict:
    """A fresh process to its first result, each variant of STARTUP_VARIANTS in turn (order rotated each
    repetition); `work` is the demo's largest base-model run (60 items of `cot` at depth 8): seconds and peak RSS."""
    import os

    from engine.backends.vllm import MULTIPROCESSING

    rows = []
    for rep in range(repeat):
        order = STARTUP_VARIANTS[rep % 3:] + STARTUP_VARIANTS[:rep % 3]
        row = {}
        for who in order:
            argument = json.dumps(work) if who != "share" else "null"
            env = {**os.environ, MULTIPROCESSING: "1" if who == "processes" else "0"}
            done = subprocess.run([sys.executable, "-c", STARTUP_CHILD, argument], capture_output=True, text=True,
                                  cwd=ROOT, env=env)
            if done.returncode != 0:
                raise SystemExit(f"start-up run failed:\n{done.stderr[-3000:]}")
            row[who] = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"  start-up {rep}: {row}", flush=True)
    result = {"work": work, "repetitions": rows}
    for label, mine, other in STARTUP_RATIOS:
        for figure in ("first_request_s", "peak_rss_mb"):
            result[f"{label} {figure}"] = spread([r[mine][figure] / r[other][figure] for r in rows])
    return result


def merged_commands(previous: list[str] | str, argv: list[str], measured: list[str]) -> list[str]:
    """The commands behind the figures in the JSON: this one for what it measured, earlier ones for the rest.

    >>> merged_commands(["python eval/bench_chains.py (overhead, votes)", "python eval/bench_chains.py (scaling)"],
    ...                 ["--only", "overhead"], ["overhead"])
    ['python eval/bench_chains.py (votes)', 'python eval/bench_chains.py (scaling)', 'python eval/bench_chains.py --only overhead (overhead)']
    """
    kept = []
    for entry in [previous] if isinstance(previous, str) else previous:
        command, _, parts = entry.rstrip(")").rpartition(" (")
        left = [part for part in parts.split(", ") if part not in measured]
        if command and left:
            kept.append(f"{command} ({', '.join(left)})")
    return kept + [" ".join(["python eval/bench_chains.py", *argv]) + f" ({', '.join(measured)})"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="overhead,batched,votes,startup,scaling")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="64,256,1024")
    parser.add_argument("--items", type=int, help="items for overhead, batched and votes (default 64, 32, 32)")
    parser.add_argument("--out", default="eval/results/bench")
    args = parser.parse_args()
    wanted = args.only.split(",")
    folder = ROOT / "runs" / f"bench-chains-{time.strftime('%Y%m%d-%H%M%S')}"
    result = {}
    from engine.environment import describe

    result["environment"] = describe("float32")
    if {"overhead", "batched", "votes"} & set(wanted):
        from engine.backends.vllm import VLLMBackend
        from engine.models import resolve_model

        backend = VLLMBackend(resolve_model(None), dtype="float32")
        for name, bench in (("overhead", overhead), ("batched", batched), ("votes", votes)):
            if name in wanted:
                print(f"{name}...", flush=True)
                result[name] = bench(backend, args.repeat, *([args.items] if args.items else []))
                print(json.dumps(result[name], indent=1), flush=True)
        backend.close()
    if "startup" in wanted:
        print("startup...", flush=True)
        result["startup"] = startup(args.repeat)
    if "scaling" in wanted:
        print("scaling...", flush=True)
        result["scaling"] = scaling([int(s) for s in args.sizes.split(",")], folder)
    print("\n| figure | median | spread | target | met |\n|---|---|---|---|---|")
    for name, key in (("overhead", "engine/raw"), ("batched", "per_item/batched"), ("votes", "k/one")):
        if name in result:
            part = result[name][key]
            print(f"| {key} | {part['median']:.2f} | {part['min']:.2f}-{part['max']:.2f} | {result[name]['target']} | "
                  f"{result[name]['met']} |")
    if "startup" in result:
        for key, part in result["startup"].items():
            if not (isinstance(part, dict) and "median" in part):  # work and repetitions
                continue
            print(f"| {key} | {part['median']:.2f} | {part['min']:.2f}-{part['max']:.2f} | < 1 | {part['median'] < 1} |")
    if "scaling" in result:
        part = result["scaling"]
        for key in ("seconds_per_token_ratio", "peak_rss_ratio"):
            print(f"| scaling {key} | {part[key]:.2f} | one run per size | {part['targets'][key]} | {part['met'][key]} |")
    target = Path(args.out) / "chains.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(target.read_text()) if target.exists() else {}
    measured = [name for name in ("overhead", "batched", "votes", "startup", "scaling") if name in result]
    result["command"] = merged_commands(previous.get("command", []), sys.argv[1:], measured)
    target.write_text(json.dumps({**previous, **result}, indent=2))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
