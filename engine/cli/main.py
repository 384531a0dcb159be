"""`python -m engine ...`: a thin command line over the library. User mistakes print one line, never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from engine.errors import EngineError, first_problem

EXAMPLES = """\
quick start:
  python -m engine models                                   # known models, the default marked
  python -m engine generate "What is the capital of France?" --backend vllm --json
  python -m engine demo                                     # arithmetic by depth, then BBH: base against fine-tuned
  python -m engine eval --task gsm8k --strategy cot --limit 200 --backend vllm
  python -m engine eval --task arithmetic --strategy decompose --depth 3 --limit 64
  python -m engine eval --task bbh-navigate --strategy fewshot-cot --samples 5   # self-consistency, k=5
  python -m engine eval --task bbh-navigate --strategy fewshot-cot --backend null  # the floor: no model at all
  python -m engine render --task gsm8k --strategy fewshot-cot --index 0          # the exact prompt text
  python -m engine render --template cot/reason.jinja --set question="What is 2+3?" --set instruction= --set answer_hint="a number"
  python -m engine check --chain my_chains.py:plan_then_solve --task arithmetic  # before any model loads
  python -m engine eval --task arithmetic --chain my_chains.py:plan_then_solve --depth 3 --limit 20
  python -m engine compare runs/A runs/B                    # paired test on the same items
  python -m engine verify runs/A                            # the summary follows from samples.jsonl
  python -m engine report runs/A runs/B --out ab.html       # the run explorer: plots, items, comparison
  python -m engine cache stats                              # the durable step cache
  python -m engine finetune --task arithmetic --strategy stepwise --out runs/ft   # LoRA on gold chains
  python -m engine eval --task arithmetic --strategy stepwise --depth 8 --model runs/ft/model
"""


BBH_DEMO_ITEMS = 10
"""The demo's BBH items per file: small enough that set-up, demo and tests stay under CI's 30 minutes."""

REPORT_EXAMPLES = """\
examples:
  python -m engine report runs/arithmetic-cot-20250101-120000        # writes report.html in that run folder
  python -m engine report runs/demo-20250101-120000                  # every run of a demo (or a multi-run eval)
  python -m engine report runs/A runs/B --out ab.html                # two runs: paired comparison, flipped items
"""


def _positive(name: str, least: int = 1):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{name} must be at least {least}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    from engine.backends.names import BACKENDS, LOCAL_BACKENDS, NULL
    from engine.tasks.spec import STRATEGIES

    parser = argparse.ArgumentParser(prog="python -m engine", description="Prompt-and-chain reasoning engine.",
                                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True)

    verbs.add_parser("models", help="list the known models and the default")
    verbs.add_parser("tasks", help="list the task files in tasks/")

    def model_options(p, default_backend="hf", backends=BACKENDS):
        p.add_argument("--model", help="short name, checkpoint directory or Hugging Face id (default smollm2-135m); "
                                       "with --backend openai, the server's model name (default: the one it serves)")
        choices = backends + (("auto",) if default_backend == "auto" else ())
        backend_help = "default auto: vllm when installed, else hf" if default_backend == "auto" else "default hf"
        if NULL in backends:
            backend_help += "; null: no model, every completion empty (the chain's floor)"
        p.add_argument("--backend", choices=choices, default=default_backend, help=backend_help)
        if "openai" in backends:
            p.add_argument("--base-url", help="--backend openai: the server, e.g. http://127.0.0.1:8000/v1; a comma "
                                              "list spreads requests over several (API key from $OPENAI_API_KEY)")
            p.add_argument("--concurrency", type=_positive("--concurrency"), default=64,
                           help="--backend openai: most requests in flight at once over all servers (default 64)")
        p.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                       help="weights dtype; auto = float32 on CPU (both backends: the same text on any machine), "
                            "bf16 on GPU. bfloat16 on vLLM's CPU build is about 1.5x faster but its text "
                            "depends on the processor and the batch")

    g = verbs.add_parser("generate", help="complete one prompt with a model")
    g.add_argument("prompt")
    model_options(g)
    g.add_argument("--max-tokens", type=_positive("--max-tokens"), default=128)
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--n", type=_positive("--n"), default=1, help="completions to sample (needs --temperature > 0 to differ)")
    g.add_argument("--seed", type=int)
    g.add_argument("--raw", action="store_true", help="send the prompt as plain text instead of a chat user message")
    g.add_argument("--json", action="store_true", help="print one JSON object with completions and token counts")

    e = verbs.add_parser("eval", help="evaluate a strategy on a task; writes summary.json, samples.jsonl, report.md")
    e.add_argument("--task", required=True, help="a task name or file; a comma list runs each (one model start)")
    strategy_help = (f"one of {', '.join(STRATEGIES)}, or the NAME of a chain the task file lists as "
                     "FILE.py:NAME among its strategies")
    e.add_argument("--strategy", help=f"{strategy_help}; a comma list runs each")
    e.add_argument("--chain", help="FILE.py:NAME: your own chain (or a function of the task spec returning one) "
                                   "instead of --strategy; templates beside FILE.py are found by name")
    model_options(e, default_backend="auto")
    e.add_argument("--scheduler", choices=("auto", "continuous", "waves"), default="auto",
                   help="continuous: each item's next step enters the engine as soon as its last one finished "
                        "(vllm); waves: one backend call per step across the dataset; auto (default): continuous "
                        "on vllm with a GPU, waves on a CPU (measured as fast there)")
    e.add_argument("--limit", type=_positive("--limit"), help="first N items (or N synthetic items)")
    e.add_argument("--depth", help="steps per item, for synthetic tasks; a list (1,2,3 or 1-4) runs each")
    e.add_argument("--samples", type=_positive("--samples"), default=1, help="k > 1: self-consistency with k samples")
    e.add_argument("--temperature", type=float, default=0.7, help="sampling temperature for --samples > 1")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--max-tokens", type=_positive("--max-tokens"))
    e.add_argument("--program-timeout", type=float, default=5.0, help="seconds a pal program may run (default 5)")
    e.add_argument("--data", help="a data file to use instead of the task's own source")
    e.add_argument("--floor", action="store_true",
                   help="also run the chain with a model that writes nothing (--backend null) on the same items, "
                        "into OUT/floor, and record that accuracy in summary.json: what the chain's code and "
                        "parser score alone")
    e.add_argument("--out", help="run folder (default runs/TASK-STRATEGY-TIME); rerunning into it resumes a killed run")
    e.add_argument("--cache", help="step cache file (default $ENGINE_STEP_CACHE or ~/.cache/engine/steps.sqlite)")
    e.add_argument("--no-cache", action="store_true", help="generate every step afresh; read and store nothing")
    e.add_argument("--kv-cache-mb", type=_positive("--kv-cache-mb"),
                   help="--backend vllm: its KV cache in MiB (default: sized from what the run's chain holds at "
                        "one time; a smaller cache costs time, never answers: summary.json counts preemptions)")
    e.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="shard the items over Ray workers, each with its own backend; no ADDRESS starts a local "
                        "Ray cluster (needs the `ray` extra)")
    e.add_argument("--ray-workers", type=_positive("--ray-workers"), default=2,
                   help="with --ray: workers, each holding one backend (default 2)")

    ch = verbs.add_parser("check", help="check a chain, template or task before any model loads: syntax, "
                                        "parsers, what a step reads that nothing writes")
    ch.add_argument("--chain", help="FILE.py:NAME (needs --task)")
    ch.add_argument("--strategy", help=f"{strategy_help} (needs --task)")
    ch.add_argument("--template", help="a template file or a name under prompts/")
    ch.add_argument("--task", help="the task whose items the chain or template will see")
    ch.add_argument("--data", help="a data file instead of the task's own")
    ch.add_argument("--depth", type=_positive("--depth"))

    v = verbs.add_parser("verify", help="recompute a run's summary from its samples.jsonl and report any mismatch")
    v.add_argument("run")

    k = verbs.add_parser("cache", help="the durable step cache: stats, or prune entries")
    k.add_argument("action", choices=("stats", "prune"))
    k.add_argument("--file", help="cache file (default $ENGINE_STEP_CACHE or ~/.cache/engine/steps.sqlite)")
    k.add_argument("--unused-days", type=float, help="prune: entries not used for this many days")
    k.add_argument("--model", help="prune: entries of models whose identity (folder|hash|dtype) contains this")
    k.add_argument("--all", action="store_true", help="prune: every entry")

    r = verbs.add_parser("render", help="print the exact text the model sees: an item's prompt, or one template")
    r.add_argument("--task", help="task name or file (with --template: fills its variables from item --index)")
    r.add_argument("--strategy", help=strategy_help)
    r.add_argument("--chain", help="FILE.py:NAME, a custom chain instead of --strategy")
    r.add_argument("--template", help="one template (a .jinja file, or a name under prompts/) rendered on its own")
    r.add_argument("--set", action="append", metavar="NAME=VALUE", help="a --template variable as text (repeatable)")
    r.add_argument("--set-json", action="append", metavar="NAME=JSON",
                   help="a --template variable as JSON, e.g. exemplars='[{\"question\": \"..\", \"answer\": \"..\"}]'")
    r.add_argument("--index", type=int, default=0)
    r.add_argument("--depth", type=_positive("--depth"))
    r.add_argument("--data")
    r.add_argument("--run", action="store_true", help="run the item for real and print every step")
    model_options(r, backends=LOCAL_BACKENDS + (NULL,))

    c = verbs.add_parser("compare", help="paired test of two runs on the same items (McNemar, bootstrap)")
    c.add_argument("run_a")
    c.add_argument("run_b")

    f = verbs.add_parser("finetune", help="fine-tune the model on a strategy's chains; tests it before and after",
                         epilog="example:\n  python -m engine finetune --task arithmetic --strategy stepwise "
                                "--max-steps 300 --out runs/ft\n  python -m engine finetune --task arithmetic "
                                "--strategy cot --source self --rounds 2 --depths 1 --out runs/star\n  python -m engine finetune "
                                "--task bbh-navigate,bbh-boolean_expressions --train-task navigate-gen,boolean-gen "
                                "--out runs/ft-two",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("--task", required=True, help="the task tested before and after (and trained on, unless --train-task); "
                                                 "a comma list with as many --train-task trains one adapter for all")
    f.add_argument("--train-task", help="the task whose items train and validate (a generator in --task's own form); "
                                        "--task's items are only tested, and any training question among them is dropped")
    f.add_argument("--strategy", help=f"whose chains are learned: {strategy_help} (a chain of the task's own "
                                      "learns with --source self)")
    f.add_argument("--chain", help="FILE.py:NAME, a custom chain instead of --strategy (--source gold needs the "
                                   "file's gold(step_name, example, state) or each Step's gold=)")
    f.add_argument("--model", help="base model (default smollm2-135m)")
    f.add_argument("--method", choices=("lora", "full"), default="lora")
    f.add_argument("--start-from", metavar="ADAPTER",
                   help="continue training this LoRA adapter (a folder or a shipped name) instead of a fresh one; "
                        "its base must be --model's")
    f.add_argument("--source", choices=("gold", "self"), default="gold",
                   help="gold: chains from the task's gold reasoning; self: the model's own correct chains (STaR)")
    f.add_argument("--rounds", type=int, default=1, help="self-taught rounds (default 1)")
    f.add_argument("--max-steps", type=int, default=120, help="optimizer steps per round (default 120)")
    f.add_argument("--depths", default=None, help="depths of the training items (default: the training task file's train_depths, else 1-4)")
    f.add_argument("--test-depths", default="1-4,6,8", help="depths tested before and after (default 1-4,6,8)")
    f.add_argument("--test-items", type=int, default=100, help="held-out test items per depth (default 100)")
    f.add_argument("--train-items", type=int, default=200, help="training items per depth (default 200)")
    f.add_argument("--val-items", type=int, default=4, help="validation items per depth (default 4)")
    f.add_argument("--eval-every", type=int, default=30, help="steps between validation runs (default 30)")
    f.add_argument("--learning-rate", type=float, help="default 1e-3 (lora) or 1e-4 (full)")
    f.add_argument("--batch-size", type=int, default=8)
    f.add_argument("--group-by-length", action="store_true",
                   help="batch pairs of similar length together: less padding, faster on mixtures of short and long chains")
    f.add_argument("--no-packing", dest="packing", action="store_false",
                   help="pad each batch to its longest pair instead of packing its pairs into one row (same loss, slower)")
    f.add_argument("--bf16", action="store_true",
                   help="mixed precision: bf16 matrix products, fp32 weights (faster where the CPU or GPU has bf16)")
    f.add_argument("--samples", type=int, default=4, help="self-taught: chains sampled per item (default 4)")
    f.add_argument("--self-items", type=int, default=200, help="self-taught: items sampled per depth and round")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--backend", choices=("auto",) + LOCAL_BACKENDS + (NULL,), default="auto",
                   help="for sampling and the before/after test (default: vllm when installed; not null)")
    f.add_argument("--out", required=True, help="run folder: model/, round-N/, test/, summary.json")
    f.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    f.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (needs wandb installed)")

    rp = verbs.add_parser("report", help="one self-contained HTML file to explore runs (plots, items, comparison)",
                          epilog=REPORT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("runs", nargs="+", metavar="RUN",
                    help="run folders written by eval, or a demo / multi-run folder holding several")
    rp.add_argument("--out", help="the HTML file (default: report.html in a single run folder, else explorer.html)")

    d = verbs.add_parser("demo", help="the embedded demo: arithmetic by depth, then twelve BIG-Bench-Hard files; base model against fine-tuned")
    model_options(d, default_backend="auto", backends=LOCAL_BACKENDS + (NULL,))
    d.add_argument("--limit", type=_positive("--limit"), default=60, help="items per depth (default 60)")
    d.add_argument("--depths", default="1-4,6,8", help="default 1-4,6,8 (the fine-tuned model saw depths 1-4 only)")
    d.add_argument("--strategies", default="direct,cot", help="base model's strategies (default direct,cot)")
    d.add_argument("--tuned", default="smollm2-135m-stepwise",
                   help="fine-tuned model to set against the base ('' for none; default smollm2-135m-stepwise)")
    d.add_argument("--tuned-strategies", default="stepwise", help="its strategies (default stepwise)")
    d.add_argument("--bbh-items", type=_positive("--bbh-items", least=0), default=BBH_DEMO_ITEMS,
                   help=f"BIG-Bench-Hard part: the first N items of each of the twelve algorithmic files (default "
                        f"{BBH_DEMO_ITEMS}; 250 is every item; 0 leaves the part out)")
    d.add_argument("--bbh-tuned", default="smollm2-135m-bbh",
                   help="the adapter set against the base model there ('' for none; default smollm2-135m-bbh)")
    d.add_argument("--out", help="folder for the demo's runs and report (default runs/demo-TIME)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.verb](args) or 0
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # settings built from the command line
        where, problem = first_problem(exc)
        print(f"error: {where}: {problem}" if where else f"error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: items already finished are kept in the run's samples.jsonl", file=sys.stderr)
        return 130


def cmd_models(args) -> int:
    from engine.models import DEFAULT_MODEL, KNOWN_MODELS, adapter_about, adapter_base, cache_dir, known_adapters

    for name, known in KNOWN_MODELS.items():
        mark = " (default)" if name == DEFAULT_MODEL else ""
        print(f"{name}{mark}: {known.description}")
    for name, folder in known_adapters().items():
        about = adapter_about(folder)
        what = f", fine-tuned on {_trained_on(about)}" if about else ""
        print(f"{name}: {adapter_base(folder)} + LoRA adapter{what} (engine/adapters/{name})")
    print(f"also: any local checkpoint directory or Hugging Face id; converted models are cached in {cache_dir()}")
    return 0


def _trained_on(about: dict) -> str:
    """What an adapter learnt, in words: "arithmetic stepwise chains", or for a mixture "4 tasks (a, b, ...),
    each with its own chain"."""
    tasks = about["task"].split(",")
    if len(tasks) == 1:
        return f"{about['task']} {about['strategy']} chains"
    chains = "each with its own chain" if "default_strategy" in about["strategy"] else f"{about['strategy']} chains"
    return f"{len(tasks)} tasks ({', '.join(tasks)}), {chains}"


def cmd_tasks(args) -> int:
    from engine.tasks.spec import load_spec, task_names

    for name in task_names():
        spec, _ = load_spec(name)
        print(f"{name}: {spec.description}")
    return 0


def _settings(args):
    from engine.sampling import SamplingSettings

    try:
        return SamplingSettings(max_tokens=args.max_tokens, temperature=args.temperature, n=args.n, seed=args.seed)
    except ValidationError as exc:
        raise EngineError(first_problem(exc)[1]) from None


def cmd_generate(args) -> int:
    from engine.backends import close_backend, load_backend
    from engine.generation import GenerationRequest

    if not args.prompt.strip():
        raise EngineError('the prompt is empty: pass some text, e.g. python -m engine generate "What is 2 + 2?"')
    sampling = _settings(args)
    request = (GenerationRequest(prompt=args.prompt, sampling=sampling) if args.raw
               else GenerationRequest.chat([{"role": "user", "content": args.prompt}], sampling))
    from engine.backends.kv_cache import KVWork

    backend = load_backend(args.backend, args.model, progress=lambda m: print(m, file=sys.stderr), dtype=args.dtype,
                           base_url=args.base_url, concurrency=args.concurrency,
                           kv_work=KVWork(sequences=args.n, tokens_per_sequence=4096))  # n full contexts at most
    try:
        (result,) = backend.generate([request])
    finally:
        close_backend(backend)
    if args.json:
        print(json.dumps({
            "model": getattr(backend, "served_model", None) or args.model or "smollm2-135m", "backend": backend.name, "prompt_text": result.prompt_text,
            "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "completions": [vars(c) for c in result.completions],
        }, indent=2, ensure_ascii=False))
    else:
        for i, completion in enumerate(result.completions):
            if len(result.completions) > 1:
                print(f"--- completion {i + 1} ({completion.finish_reason})")
            print(completion.text)
    return 0


def cmd_eval(args) -> int:
    from engine.runs.evaluate import run_eval
    from engine.runs.plan import EvalSettings
    from engine.runs.many import is_many, plan_runs, run_many

    fields = {k: getattr(args, k) for k in EvalSettings.model_fields}
    if is_many(args.task, args.strategy, args.depth):
        run_many(plan_runs(fields))
        return 0
    if args.depth is not None:
        if not args.depth.isdigit() or int(args.depth) < 1:
            raise EngineError(f"--depth must be a whole number from 1, or a list such as 1,2,3 or 1-4; got {args.depth!r}")
        fields["depth"] = int(args.depth)
    summary = run_eval(EvalSettings(**fields))
    if summary.get("finished_before"):
        print(f"{summary['out']} already holds this run, finished: nothing was generated")
        print(_summary_line(summary))
        return 0
    print(_summary_line(summary))
    print(f"wrote {summary['out']}/summary.json, samples.jsonl, report.md")
    return 0


def _summary_line(summary: dict) -> str:
    from engine.runs.report import interval, pct

    parts = [f"{summary['task']} {summary['strategy']}: {summary['correct']}/{summary['n']} = {pct(summary['accuracy'])}",
             f"95% CI {interval(summary['ci95'])}", f"unparsed {pct(summary['unparsed_rate'])}"]
    for name, part in summary["extractions"].items():
        parts.append(f"{name} {pct(part['accuracy'])}")
    if summary.get("floor") and summary["backend"] != "null":
        parts.append(f"floor {pct(summary['floor']['accuracy'])}")
    if summary.get("chance") is not None:
        parts.append(f"chance {pct(summary['chance'])}")
    parts.append(f"{summary['wall_seconds']} s")
    return "  ".join(parts)


def cmd_render(args) -> int:
    from engine.cli.render import render_item, render_template

    print(render_template(args) if args.template else render_item(args))
    return 0


def cmd_check(args) -> int:
    from engine.cli.check import check_chain, check_task, check_template

    if args.template:
        if args.chain or args.strategy:
            raise EngineError("check one thing at a time: --template, or --chain/--strategy with --task")
        report = check_template(args.template, args.task, args.data, args.depth)
    elif args.chain or args.strategy:
        report = check_chain(args.chain, args.strategy, args.task, args.data, args.depth)
    elif args.task:
        report = check_task(args.task, args.data, args.depth)
    else:
        raise EngineError("check needs --chain FILE.py:NAME --task T, --template T, or --task T")
    for line in report.lines():
        print(line)
    return 1 if report.problems else 0


def cmd_compare(args) -> int:
    from engine.runs.compare import compare_folders

    print(compare_folders(args.run_a, args.run_b))
    return 0


def cmd_verify(args) -> int:
    from engine.runs.verify import verify_run

    problems, checked = verify_run(args.run)
    for problem in problems:
        print(f"{args.run}: {problem}")
    if problems:
        print(f"{args.run}: {len(problems)} problems in {checked} records", file=sys.stderr)
        return 1
    print(f"{args.run}: ok ({checked} items, each once; the summary follows from samples.jsonl)")
    return 0


def cmd_cache(args) -> int:
    from engine.runs.step_cache import StepCache, default_cache_path

    path = Path(args.file) if args.file else default_cache_path()
    if not path.exists():
        raise EngineError(f"no step cache at {path}: run an eval first, or pass --file")
    cache = StepCache(path)
    try:
        if args.action == "stats":
            print(json.dumps(cache.stats(), indent=2))
            return 0
        if args.unused_days is None and args.model is None and not args.all:
            raise EngineError("cache prune needs --unused-days N, --model TEXT or --all (to empty it)")
        removed = cache.prune(args.unused_days, args.model)
        print(f"removed {removed} entries from {path}; {cache.stats()['entries']} left")
        return 0
    finally:
        cache.close()


def cmd_finetune(args) -> int:
    from engine.finetune import FinetuneSettings, finetune

    settings = FinetuneSettings(**{k: getattr(args, k) for k in FinetuneSettings.model_fields if hasattr(args, k)})
    summary = finetune(settings, progress=lambda m: print(m, file=sys.stderr))
    tests = {t: one["test"] for t, one in summary["tasks"].items()} if "tasks" in summary else {"": summary["test"]}
    for task, test in tests.items():
        for depth, row in test.items():
            print(f"{task + ' ' if task else ''}depth {depth}: base {100 * row['base']:.1f}% -> fine-tuned "
                  f"{100 * row['tuned']:.1f}% (n={row['n']}, McNemar p = {row['mcnemar_p']:.3g})")
    print(f"wrote {summary['model_dir']} (a --model for every verb) and {Path(settings.out) / 'summary.json'}")
    return 0


def cmd_report(args) -> int:
    from engine.explorer import write_explorer

    print(f"wrote {write_explorer(args.runs, args.out)}")
    return 0


def cmd_demo(args) -> int:
    from engine.cli.demo import run_demo

    run_demo(args)
    return 0


COMMANDS = {"models": cmd_models, "tasks": cmd_tasks, "generate": cmd_generate, "eval": cmd_eval,
            "render": cmd_render, "compare": cmd_compare, "demo": cmd_demo, "finetune": cmd_finetune,
            "verify": cmd_verify, "cache": cmd_cache, "check": cmd_check, "report": cmd_report}
