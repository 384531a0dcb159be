"""`finetune(settings) -> summary`: training data from chains, training rounds, and the before/after test.

DIR gets: `model/` (a LoRA adapter or a full checkpoint: a valid `--model` everywhere), `round-N/` (checkpoints,
training log, TensorBoard events, for self-taught rounds the kept chains), `test/` (evaluation runs of the base
and the fine-tuned model on the same held-out items) and `summary.json` (accuracy before and after per depth,
the paired test, compute used, the exact command and seed).
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from engine.files import write_atomic
from engine.errors import EngineError
from engine.finetune.settings import FinetuneSettings

RUN_FILE = "finetune-run.json"


def claim_folder(out: Path, settings: FinetuneSettings) -> None:
    """Refuse a folder that holds another run; with --resume, require that it holds this one."""
    record = out / RUN_FILE
    mine = settings.model_dump(exclude={"resume"})
    if record.exists():
        theirs = json.loads(record.read_text())
        if theirs != mine:
            changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            listed = ", ".join(changed[:4]) + (f" and {len(changed) - 4} more" if len(changed) > 4 else "")
            raise EngineError(f"{out} holds a different fine-tuning run (it differs in {listed}): "
                              "pass another --out, or the same settings with --resume")
        if not settings.resume:
            raise EngineError(f"{out} already holds this fine-tuning run: pass --resume to continue it, or another --out")
    elif out.exists() and any(out.iterdir()):
        raise EngineError(f"{out} is not empty and holds no fine-tuning run: pass an empty or new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(mine, indent=2))


def finetune(settings: FinetuneSettings | None = None, progress=print, **options) -> dict:
    """Fine-tune, test before and after, and return the summary (also written to DIR/summary.json)."""
    from engine.finetune.data import build_splits
    from engine.finetune.gold import gold_writer_for
    from engine.finetune.traces import gold_pairs
    from engine.models import DEFAULT_MODEL, check_tokenizer, resolve_model
    from engine.chains.strategies import STATE_KEYS, check_wiring, initial_state, select_chain
    from engine.tasks.spec import load_spec

    settings = settings or FinetuneSettings(**options)
    started = time.perf_counter()
    if settings.is_mixture:
        return _finetune_mixture(settings, progress, started)
    spec, base = load_spec(settings.task)
    label, chain = select_chain(spec, settings.strategy, settings.chain, base=base)
    writer = gold_writer_for(chain, label, settings.chain is not None) if settings.source == "gold" else None
    # (a missing writer fails now, before any model loads)
    # with --train-task, items written in the task's form by another task's generator; the chain stays the task's
    splits = build_splits(settings, spec, base, load_spec(settings.train_task) if settings.train_task else None)
    check_wiring(chain, set(STATE_KEYS) | set(splits.train[0].fields), label)
    start = start_adapter(settings)
    base_dir = resolve_model(settings.model, progress=progress)
    check_tokenizer(base_dir)
    out = Path(settings.out)
    if settings.eval_every > settings.max_steps:
        settings = settings.model_copy(update={"eval_every": settings.max_steps})
    states = lambda items: [initial_state(e, spec, []) for e in items]  # noqa: E731
    validate = _validator(chain, splits.validation, states(splits.validation), spec)
    rounds = []
    if settings.source == "gold":
        from transformers import AutoTokenizer

        from engine.finetune.train import load_for_training

        # the gold chains first: a task without gold reasoning fails here, before any model loads
        pairs = gold_pairs(chain, label, splits.train, states(splits.train), AutoTokenizer.from_pretrained(base_dir),
                           writer, spec.answer_type)
        progress(f"{len(pairs)} training pairs from {len(splits.train)} gold chains ({label})")
        claim_folder(out, settings)
        model, tokenizer = load_for_training(base_dir, settings.method, settings.lora_r, settings.seed, start)
        rounds.append(_train(model, tokenizer, pairs, validate, settings, out / "round-1", settings.resume))
        rounds[-1]["pairs"] = len(pairs)
    else:
        claim_folder(out, settings)
        rounds = _self_taught(chain, splits, spec, states, validate, settings, base_dir, start, out, progress)
    final = rounds[-1].pop("model")
    for record in rounds:
        record.pop("model", None)
    _save(final, settings, base_dir, out / "model", settings.model or DEFAULT_MODEL)
    progress(f"saved the fine-tuned {'adapter' if settings.method == 'lora' else 'model'} to {out / 'model'}")
    test = before_after(settings, spec, base_dir, out, progress)
    summary = {
        "task": spec.name, "strategy": label, "chain": settings.chain, "base_model": settings.model or DEFAULT_MODEL,
        "method": settings.method, "source": settings.source, "model_dir": str(out / "model"),
        "data": {"train_task": settings.train_task or spec.name,
                 "train_items": len(splits.train), "validation_items": len(splits.validation),
                 "test_items": {str(d): len(v) for d, v in splits.test.items()},
                 "skipped_overlapping": splits.skipped_overlapping, "overlap": splits.overlap},
        "rounds": rounds, "test": test,
        "compute": _compute(rounds, started),
        "settings": settings.model_dump(), "seed": settings.seed,
        "command": _command(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    return summary


def _finetune_mixture(settings: FinetuneSettings, progress, started: float) -> dict:
    """One adapter for several tasks (`engine.finetune.mixture`): gold chains only, one round."""
    from transformers import AutoTokenizer

    from engine.finetune import mixture
    from engine.finetune.train import load_for_training
    from engine.models import DEFAULT_MODEL, check_tokenizer, resolve_model

    mixture.check_lists(mixture.split_names(settings.task, "--task"),
                        mixture.split_names(settings.train_task, "--train-task") if settings.train_task else None)
    if settings.source != "gold" or settings.chain is not None:
        raise EngineError("a mixture of tasks trains on gold chains of each task's own chain: drop --chain and "
                          "--source self (or train one task at a time)")
    group = mixture.members(settings, settings.train_items)
    start = start_adapter(settings)
    base_dir = resolve_model(settings.model, progress=progress)
    check_tokenizer(base_dir)
    out = Path(settings.out)
    if settings.eval_every > settings.max_steps:
        settings = settings.model_copy(update={"eval_every": settings.max_steps})
    pairs = mixture.mixed_pairs(group, AutoTokenizer.from_pretrained(base_dir), progress)
    validate = mixture.mixed_validator(group, _validator)
    claim_folder(out, settings)
    model, tokenizer = load_for_training(base_dir, settings.method, settings.lora_r, settings.seed, start)
    record = _train(model, tokenizer, pairs, validate, settings, out / "round-1", settings.resume)
    record["pairs"] = len(pairs)
    _save(record.pop("model"), settings, base_dir, out / "model", settings.model or DEFAULT_MODEL)
    progress(f"saved the fine-tuned adapter to {out / 'model'}")
    entries = [(m.settings.model_copy(update={"strategy": m.label}), m.spec, mixture.test_dir(out, m)) for m in group]
    tests = before_after_all(entries, base_dir, out / "model", progress)
    summary = {
        "tasks": {m.spec.name: {"strategy": m.label, "data": mixture.data_summary(m), "test": test}
                  for m, test in zip(group, tests)},
        "base_model": settings.model or DEFAULT_MODEL, "method": settings.method, "source": settings.source,
        "model_dir": str(out / "model"), "rounds": [record],
        "compute": _compute([record], started),
        "settings": settings.model_dump(), "seed": settings.seed, "command": _command(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    return summary


def _compute(rounds: list[dict], started: float) -> dict:
    """What the training rounds used, and the whole command's wall time."""
    return {"steps": sum(r["steps"] for r in rounds), "tokens_seen": sum(r["tokens_seen"] for r in rounds),
            "train_seconds": round(sum(r["train_seconds"] for r in rounds), 1),
            "wall_seconds": round(time.perf_counter() - started, 1)}


def _command() -> str:
    """The command line that ran this, as a user would type it (the Python API records its settings only)."""
    if sys.argv and sys.argv[0].endswith(("engine/__main__.py", "/engine")) and "finetune" in sys.argv:
        return "python -m engine " + shlex.join(sys.argv[1:])
    return "python " + shlex.join(sys.argv) if sys.argv and sys.argv[0] else ""


def _validator(chain, examples, states, spec):
    """Validation accuracy of the model in training: the chain through the engine's scheduler, on hf."""
    from engine.backends.hf import HFBackend
    from engine.scoring.parsers import is_correct
    from engine.chains.scheduler import ExampleRun, run_all

    def validate(model, tokenizer) -> float:
        backend = HFBackend.from_loaded(model, tokenizer)
        runs = run_all(chain, [ExampleRun(dict(s)) for s in states], backend)
        right = [is_correct(r.state.get("answer"), e, spec.answer_type) for r, e in zip(runs, examples)]
        return sum(right) / len(right) if right else 0.0

    return validate


def _train(model, tokenizer, pairs, validate, settings, folder: Path, resume: bool) -> dict:
    from engine.finetune.train import tokenize_pairs, train_round

    if not pairs:
        raise EngineError("no training pairs: the chain made no model calls for these items")
    folder.mkdir(parents=True, exist_ok=True)
    return train_round(model, tokenizer, tokenize_pairs(pairs, tokenizer), validate, settings, folder, resume)


def start_adapter(settings: FinetuneSettings) -> str | None:
    """The folder of `--start-from`'s adapter, checked before anything loads: a LoRA adapter on the run's base."""
    from engine.errors import ModelError
    from engine.models import DEFAULT_MODEL, adapter_base, check_model

    if settings.start_from is None:
        return None
    try:
        kind, folder = check_model(settings.start_from)
    except ModelError as exc:
        raise EngineError(f"--start-from: {exc}") from None
    if kind != "adapter":
        raise EngineError(f"--start-from {settings.start_from} is not a LoRA adapter (no adapter_config.json): name a "
                          "shipped adapter or a finetune run's model/ folder")
    base, run_base = adapter_base(folder), settings.model or DEFAULT_MODEL
    if base != run_base:
        raise EngineError(f"--start-from {settings.start_from} was trained on {base}, not on {run_base}: pass "
                          f"--model {base}")
    return str(folder)


def _self_taught(chain, splits, spec, states, validate, settings, base_dir, start, out, progress) -> list[dict]:
    """STaR: sample with the current model, keep correct chains, retrain from the base (or from `start`, the
    --start-from adapter's folder) on all kept so far."""
    from engine.backends import close_backend, load_backend, resolve_backend_name
    from engine.finetune.selftaught import self_taught_pairs
    from engine.finetune.train import load_for_training

    items = _per_depth(splits.train, settings.self_items)
    from engine.runs.kv_work import work_of_run

    rounds, pairs, current = [], [], base_dir
    name = resolve_backend_name(settings.backend)
    # k samples of every training item at once, the same in every round: estimated once, for vllm only
    work = work_of_run(base_dir, chain, spec, [], items, settings.samples) if name == "vllm" else None
    for number in range(1, settings.rounds + 1):
        backend = load_backend(name, current, progress=progress, kv_work=work)
        try:
            found = self_taught_pairs(chain, items, states(items), spec, backend, settings.samples,
                                      settings.temperature, settings.seed + 1000 * number)
        finally:
            close_backend(backend)
        progress(f"round {number}: {found.solved} of {found.items} items solved, {found.rationalized} more with "
                 f"the answer as a hint; {found.kept_chains} chains kept of {found.sampled_chains} sampled")
        if not found.pairs:
            if not rounds:
                raise EngineError(f"self-taught round {number} found no correct chain in {found.sampled_chains} samples "
                                  f"(even with the answer as a hint): start from --source gold or easier --depths")
            progress(f"round {number} found no correct chain: stopping, the model of round {number - 1} is kept")
            break
        pairs.extend(found.pairs)
        model, tokenizer = load_for_training(base_dir, settings.method, settings.lora_r, settings.seed, start)
        folder = out / f"round-{number}"
        record = _train(model, tokenizer, pairs, validate, settings, folder, settings.resume)
        record.update(round=number, items=found.items, solved=found.solved, rationalized=found.rationalized,
                      kept_chains=found.kept_chains, sampled_chains=found.sampled_chains, pairs=len(pairs))
        rounds.append(record)
        if number < settings.rounds:  # the next round samples from this round's model
            current = str(folder / "merged")
            _save(record["model"], settings, base_dir, Path(current), base_dir, merged=True)
    return rounds


def _per_depth(examples, count: int) -> list:
    by_depth: dict[int, list] = {}
    for example in examples:
        by_depth.setdefault(len(example.gold_steps or ()), []).append(example)
    return [e for group in by_depth.values() for e in group[:count]]


def _save(model, settings, base_dir: str, target: Path, base_name: str, merged: bool = False) -> None:
    """An adapter (LoRA) or a full checkpoint, with the base's tokenizer and generation config beside it."""
    from transformers import AutoTokenizer, GenerationConfig

    target.mkdir(parents=True, exist_ok=True)
    if settings.method == "lora" and not merged:
        model.save_pretrained(target)
        # name the base as the engine knows it ("smollm2-135m", not this machine's cache path); written after
        # saving, since PEFT would otherwise look the name up on the hub
        config_file = target / "adapter_config.json"
        config = json.loads(config_file.read_text())
        config["base_model_name_or_path"] = base_name
        config_file.write_text(json.dumps(config, indent=2))
        (target / "engine-adapter.json").write_text(json.dumps(
            {"base": base_name, "task": settings.task, "train_task": settings.train_task,
             "strategy": settings.strategy or settings.chain or "each task's default_strategy"}, indent=2))
        return
    if settings.method == "lora":
        model = model.merge_and_unload()
    model.save_pretrained(target, safe_serialization=True)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(target)
    GenerationConfig.from_pretrained(base_dir).save_pretrained(target)


def before_after(settings, spec, base_dir: str, out: Path, progress) -> dict:
    """The base and the fine-tuned model on the same held-out test items, each depth with its paired test."""
    return before_after_all([(settings, spec, out / "test")], base_dir, out / "model", progress)[0]


def before_after_all(entries, base_dir: str, tuned: Path, progress) -> list[dict]:
    """`before_after` for several tasks ((settings, spec, test folder) each): each model loads once for all."""
    from engine.backends import close_backend, load_backend, resolve_backend_name
    from engine.runs.compare import compare_paired
    from engine.runs.evaluate import run_eval
    from engine.runs.kv_work import work_of_plans
    from engine.runs.plan import EvalSettings, prepare
    from engine.tasks.spec import parse_depths

    runs = []  # (entry number, depth, plan, folder)
    for number, (settings, spec, folder) in enumerate(entries):
        depths = parse_depths(settings.test_depths) if spec.source.generator else [None]
        for depth in depths:
            plan = prepare(EvalSettings(task=settings.task, strategy=settings.strategy, chain=settings.chain,
                                        depth=depth, limit=settings.test_items, model=base_dir))
            runs.append((number, depth, plan, folder))
    name = resolve_backend_name(entries[0][0].backend)
    # one estimate for both models (the tuned one has the base's tokenizer): the largest test run, for vllm only
    work = work_of_plans([plan for _, _, plan, _ in runs]) if name == "vllm" else None
    folders: list[dict[str, dict]] = [{} for _ in entries]
    for label, model in (("base", base_dir), ("tuned", str(tuned))):
        backend = load_backend(name, model, progress=progress, kv_work=work)
        try:
            for number, depth, plan, test in runs:
                folder = test / label / (f"d{depth}" if depth else "all")
                if (folder / "summary.json").exists():  # a resumed run tests its model afresh
                    import shutil

                    shutil.rmtree(folder)
                one = plan.settings.model_copy(update={"model": model, "backend": name, "out": str(folder)})
                run_eval(replace(plan, settings=one), backend=backend, progress=False)  # same items and chain
                folders[number].setdefault(str(depth or "all"), {})[label] = str(folder)
        finally:
            close_backend(backend)
    tables = []
    for (settings, spec, _), pairs in zip(entries, folders):
        table = {}
        for depth, pair in pairs.items():
            result, _, shared = compare_paired(pair["base"], pair["tuned"])
            table[depth] = {"n": len(shared), "base": result["accuracy_a"], "tuned": result["accuracy_b"],
                            "mcnemar_p": result["mcnemar"]["p_value"], "bootstrap": result["bootstrap"],
                            "verdict": result["verdict"]}
            where = f"{spec.name} " if len(entries) > 1 else ""
            progress(f"{where}depth {depth}: base {100 * result['accuracy_a']:.1f}% -> tuned "
                     f"{100 * result['accuracy_b']:.1f}% (McNemar p = {result['mcnemar']['p_value']:.3g})")
        tables.append(table)
    return tables
