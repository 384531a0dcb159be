"""`python -m engine render`: the exact text the model sees, chat template applied, for one item."""

from __future__ import annotations

import json

from engine.chains.scheduler import first_request
from engine.errors import EngineError


def render_item(args) -> str:
    from engine.chains.strategies import initial_state
    from engine.runs.plan import EvalSettings, prepare

    if args.task is None:
        raise EngineError("render needs --task (with --strategy or --chain), or --template with --set NAME=VALUE")
    if args.set:
        raise EngineError("--set fills a --template's variables: pass --template T, or drop --set to see a "
                          "strategy's prompt for an item")
    settings = EvalSettings(task=args.task, strategy=args.strategy, chain=args.chain, depth=args.depth,
                            data=args.data, limit=args.index + 1, model=args.model, backend=args.backend)
    plan = prepare(settings)
    spec, examples = plan.spec, plan.examples
    if args.index < 0 or args.index >= len(examples):
        raise EngineError(f"--index {args.index} is out of range: the task has {len(examples)} items here")
    example = examples[args.index]
    state = initial_state(example, spec, plan.exemplars)
    if args.run:
        return _run_one(settings, spec, example, state, plan.chain, args.dtype)
    request = first_request(plan.chain, state)
    if request is None:
        return "(this strategy's first step makes no model call)"
    from engine.backends.formatting import prompt_text
    from engine.models import resolve_model

    tokenizer = _tokenizer(resolve_model(args.model))
    header = f"# {spec.name} item {args.index} ({example.id}), strategy {plan.strategy}, gold {example.gold!r}"
    sampling = request.sampling.model_dump(exclude_defaults=True)
    return f"{header}\n# sampling: {json.dumps(sampling)}\n{prompt_text(request, tokenizer)}"


def parse_assignments(pairs: list[str], as_json: bool = False) -> dict:
    """`["question=What is 2+2?", "n=3"]` -> {"question": "What is 2+2?", "n": "3"} (values as JSON with as_json)."""
    values = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        name = name.strip()
        flag = "--set-json" if as_json else "--set"
        if not equals or not name.isidentifier():
            raise EngineError(f"{flag} {pair!r} must look like NAME=VALUE, with NAME a template variable")
        if as_json:
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise EngineError(f"--set-json {name}: {value[:60]!r} is not JSON ({exc.msg}); quote text as "
                                  f"'\"text\"' or use --set") from exc
        values[name] = value
    return values


def render_template(args) -> str:
    """`render --template T --set k=v`: one template on its own, with the item's fields when --task is given."""
    from engine.backends.formatting import prompt_text
    from engine.cli.check import locate_template
    from engine.generation import GenerationRequest
    from engine.models import resolve_model
    from engine.chains.templates import render, required_variables

    name, dirs = locate_template(args.template)
    context = {}
    if args.task is not None:
        from engine.chains.strategies import initial_state
        from engine.runs.plan import EvalSettings, prepare

        settings = EvalSettings(task=args.task, strategy=args.strategy, chain=args.chain, depth=args.depth,
                                data=args.data, limit=args.index + 1)
        plan = prepare(settings)
        if args.index < 0 or args.index >= len(plan.examples):
            raise EngineError(f"--index {args.index} is out of range: the task has {len(plan.examples)} items here")
        context = initial_state(plan.examples[args.index], plan.spec, plan.exemplars)
    context.update(parse_assignments(args.set or []))
    context.update(parse_assignments(args.set_json or [], as_json=True))
    missing = sorted(required_variables(name, dirs) - set(context))
    if missing:
        raise EngineError(f"template {args.template} reads {', '.join(missing)}: pass --set NAME=VALUE for each "
                          "(or --task and --index to take an item's fields)")
    rendered = render(name, context, dirs)
    if rendered.messages is None:
        return rendered.text
    request = GenerationRequest(messages=rendered.messages)
    return prompt_text(request, _tokenizer(resolve_model(args.model)))


def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _run_one(settings, spec, example, state, chain, dtype: str) -> str:
    from engine.backends import load_backend
    from engine.chains.scheduler import ExampleRun, run_all
    from engine.scoring.records import score_example

    backend = load_backend(settings.backend, settings.model, dtype=dtype)
    (run,) = run_all(chain, [ExampleRun(state)], backend)
    record = score_example(example, run, spec)
    out = [f"# {example.id}: gold {example.gold!r}, answer {record['answer']!r}, correct {record['correct']}"]
    for number, step in enumerate(record["steps"], 1):
        out.append(f"\n## step {number}: {step['step']} ({step['kind']})")
        if step["prompt"] is not None:
            out.append(f"### prompt ({step['prompt_tokens']} tokens)\n{step['prompt']}")
        for text in step["outputs"]:
            out.append(f"### output ({step['completion_tokens']} tokens)\n{text}")
        out.append(f"### parsed: {step['parsed']!r}" + (f"  error: {step['error']}" if step["error"] else ""))
    if record["error"]:
        out.append(f"\nerror: {record['error']}")
    return "\n".join(out)
