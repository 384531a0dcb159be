"""`python -m engine render`: the exact text the model sees, chat template applied, for one item."""

from __future__ import annotations

import json

from engine.errors import EngineError


def first_request(chain, state: dict):
    """The first generation request the chain makes for this state (tool-only steps run on the way)."""
    from engine.scheduler import ExampleRun

    program = chain.run(ExampleRun(dict(state)))
    try:
        requests = next(program)
    except StopIteration:
        return None
    return requests[0] if requests else None


def render_item(args) -> str:
    from engine.evaluate import EvalSettings, prepare
    from engine.strategies import initial_state

    settings = EvalSettings(task=args.task, strategy=args.strategy, depth=args.depth, data=args.data,
                            limit=args.index + 1, model=args.model, backend=args.backend)
    spec, strategy, examples, exemplars, chain = prepare(settings)
    if args.index < 0 or args.index >= len(examples):
        raise EngineError(f"--index {args.index} is out of range: the task has {len(examples)} items here")
    example = examples[args.index]
    state = initial_state(example, spec, exemplars)
    if args.run:
        return _run_one(settings, spec, example, state, chain, args.dtype)
    request = first_request(chain, state)
    if request is None:
        return "(this strategy's first step makes no model call)"
    from engine.backends.formatting import prompt_text
    from engine.models import resolve_model

    tokenizer = _tokenizer(resolve_model(args.model))
    header = f"# {spec.name} item {args.index} ({example.id}), strategy {strategy}, gold {example.gold!r}"
    sampling = request.sampling.model_dump(exclude_defaults=True)
    return f"{header}\n# sampling: {json.dumps(sampling)}\n{prompt_text(request, tokenizer)}"


def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def _run_one(settings, spec, example, state, chain, dtype: str) -> str:
    from engine.backends import load_backend
    from engine.scheduler import ExampleRun, run_all
    from engine.scoring import score_example

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
