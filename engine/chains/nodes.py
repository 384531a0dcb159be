"""Steps and chains: R1∘…∘Rn as small composable objects.

A `Step` is a template, sampling settings and a parser: it renders one prompt from the example's state,
asks the model, and stores the parsed value under its `output` name. Composites build chains from steps:
`Sequence` (each node sees what earlier ones wrote), `Decompose` (least-to-most: a list of sub-questions, a
sub-chain for each in order, each seeing the answers so far), `Loop` (repeat until a condition or a limit),
and `Vote` (k samples or k runs of a sub-chain, aggregated by majority or a scorer). Tool nodes (`Program`,
`Calculator`, `Compute`) run code instead of the model.

Every node is a generator over waves (see `scheduler`), so a chain written for one example runs for a whole
dataset with one backend call per wave. `check(available)` walks a chain before any model call and fails if a
step reads a value that no earlier step produced.

    chain = Sequence(
        Step("reasoning", "cot/reason.jinja", SamplingSettings(max_tokens=256)),
        Step("answer", "cot/answer.jinja", SamplingSettings(max_tokens=16), parse=extract_number),
    )
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from contextlib import contextmanager

from engine.errors import ChainError
from engine.generation import GenerationRequest
from engine.scoring.metrics import majority_vote
from engine.sampling import SamplingSettings
from engine.chains.scheduler import ExampleRun, StepRecord, gather
from engine.chains.templates import render, required_variables


def _keep_text(text: str) -> str:
    return text


_TEMPLATE_FOLDERS: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("template_folders", default=())


@contextmanager
def template_folder(folder):
    """Steps made inside this block also look for templates in `folder` (before `prompts/`).

    A chain file given as `--chain FILE.py:NAME` is loaded inside this block, so the templates beside it are
    found by bare name without each step listing `template_dirs`.
    """
    token = _TEMPLATE_FOLDERS.set(_TEMPLATE_FOLDERS.get() + (str(folder),))
    try:
        yield
    finally:
        _TEMPLATE_FOLDERS.reset(token)


def parser_named(parse, step: str):
    """A step's parser: a function, or the name of one of `engine.scoring.parsers.PARSERS` ("number", "choice", ...)."""
    if not isinstance(parse, str):
        return parse
    from engine.scoring.parsers import PARSERS

    if parse not in PARSERS:
        raise ChainError(f"step {step!r}: unknown parser {parse!r}; known: {', '.join(sorted(PARSERS))}")
    return PARSERS[parse]


class Step:
    """Render `template` with the state, generate, parse, and store the value under `output`.

    With `sampling.n > 1` the stored value is the list of the n parsed samples (see `Vote`).
    """

    kind = "model"
    samples_natively = True
    """A vote over this step asks the backend for n samples of one prompt (shared prefix)."""

    def __init__(self, name: str, template: str, sampling: SamplingSettings | None = None,
                 parse: Callable[[str], object] | str = _keep_text, output: str | None = None,
                 template_dirs: tuple[str, ...] = (), gold: Callable[[object, dict], str] | None = None):
        """`gold(example, state) -> str`: what a perfect model writes at this step, for `finetune --source gold`
        on a chain of your own (a chain file may instead define one `gold(step_name, example, state)`)."""
        self.gold = gold
        self.name = name
        self.template = template
        self.sampling = sampling or SamplingSettings()
        self.parse = parser_named(parse, name)
        self.output = output or name
        self.template_dirs = tuple(dict.fromkeys((*map(str, template_dirs), *_TEMPLATE_FOLDERS.get())))

    def reads(self) -> set[str]:
        return required_variables(self.template, self.template_dirs)

    def check(self, available: set[str]) -> set[str]:
        missing = sorted(self.reads() - available)
        if missing:
            have = ", ".join(sorted(available)) or "nothing"
            raise ChainError(
                f"step {self.name!r} (template {self.template}) reads {', '.join(missing)}, which no earlier step "
                f"produces (available: {have}): add a step that writes it or fix the template"
            )
        return available | {self.output, f"{self.output}_text"}

    def with_samples(self, k: int, temperature: float | None = None, seed: int | None = None) -> "Step":
        update = {"n": k}
        if temperature is not None:
            update["temperature"] = temperature
        if seed is not None:
            update["seed"] = seed
        sampling = SamplingSettings(**{**self.sampling.model_dump(), **update})
        return Step(self.name, self.template, sampling, self.parse, self.output, self.template_dirs, self.gold)

    def request(self, run: ExampleRun) -> GenerationRequest:
        rendered = render(self.template, run.state, self.template_dirs)
        sampling = self.sampling
        if sampling.seed is not None and run.seed_offset:
            sampling = sampling.model_copy(update={"seed": sampling.seed + run.seed_offset})
        if rendered.messages is not None:
            return GenerationRequest(messages=rendered.messages, sampling=sampling, step=self.name)
        return GenerationRequest(prompt=rendered.text, sampling=sampling, step=self.name)

    def run(self, run: ExampleRun):
        request = self.request(run)
        (result,) = yield [request]
        raise_if_failed(result, self.name)
        texts = [c.text for c in result.completions]
        parsed = [self.parse(t) for t in texts]
        value = parsed[0] if self.sampling.n == 1 else parsed
        run.state[self.output] = value
        run.state[f"{self.output}_text"] = texts[0] if self.sampling.n == 1 else texts
        run.records.append(StepRecord(
            step=self.name, kind=self.kind, prompt=result.prompt_text, outputs=texts, parsed=value,
            prompt_tokens=result.prompt_tokens, cached_prompt_tokens=result.cached_prompt_tokens,
            completion_tokens=result.completion_tokens,
            finish_reasons=[c.finish_reason for c in result.completions], seconds=result.seconds,
            request_key=request.key, branch=run.branch, cached=result.cached,
        ))
        return value


def raise_if_failed(result, step: str) -> None:
    """A request the backend could not serve (too long a prompt) fails its item, with the reason, not the run."""
    if result.error is not None:
        raise GenerationFailed(f"step {step!r}: {result.error}")


class GenerationFailed(RuntimeError):
    """The backend refused one request; `run_all` records it on that item and goes on with the others."""


class Sequence:
    """R1∘…∘Rn: run nodes in order; each sees the state the earlier ones built."""

    def __init__(self, *nodes):
        if not nodes:
            raise ChainError("a Sequence needs at least one step")
        self.nodes = nodes

    @property
    def output(self) -> str:
        return self.nodes[-1].output

    def check(self, available: set[str]) -> set[str]:
        for node in self.nodes:
            available = node.check(available)
        return available

    def run(self, run: ExampleRun):
        value = None
        for node in self.nodes:
            value = yield from node.run(run)
        return value


class Decompose:
    """Least-to-most: `plan` writes a list of sub-questions; `solve` runs for each, in order.

    While solving sub-question i the state holds `sub_question` (its text), `sub_index` and `solved` (a list
    of {"question", "answer"} for the ones before it). At the end `solved` holds every pair and `output`
    holds the last answer (the last sub-question is the original question, as in least-to-most prompting).
    """

    def __init__(self, plan, solve, output: str = "answer", max_sub_questions: int = 8):
        self.plan, self.solve, self.output = plan, solve, output
        self.max_sub_questions = max_sub_questions

    def check(self, available: set[str]) -> set[str]:
        available = self.plan.check(available)
        self.solve.check(available | {"sub_question", "sub_index", "solved"})
        return available | {"solved", self.output, self.solve.output}

    def run(self, run: ExampleRun):
        sub_questions = yield from self.plan.run(run)
        sub_questions = list(sub_questions or [])[: self.max_sub_questions]
        solved: list[dict] = []
        answer = None
        for index, question in enumerate(sub_questions):
            run.state.update(sub_question=question, sub_index=index, solved=list(solved))
            answer = yield from self.solve.run(run)
            solved.append({"question": question, "answer": answer})
        run.state["solved"] = solved
        run.state[self.output] = answer
        return answer


class Loop:
    """Repeat `body` until `until(state)` is true or `max_iterations` runs; `iteration` counts from 0."""

    def __init__(self, body, until: Callable[[dict], bool], max_iterations: int = 4, carries_outputs: bool = True):
        """`carries_outputs=False` says that each iteration's prompt is built afresh from the state, without the
        text earlier iterations wrote (as `stepwise` does): then one iteration's tokens are all an item holds in
        the KV cache at once, and `engine.runs.kv_work` sizes the cache for that instead of every iteration's
        output piled into one sequence. Only memory sizing reads it; results never depend on it."""
        if max_iterations < 1:
            raise ChainError(f"max_iterations must be at least 1, got {max_iterations}")
        self.body, self.until, self.max_iterations = body, until, max_iterations
        self.carries_outputs = carries_outputs

    @property
    def output(self) -> str:
        return self.body.output

    def check(self, available: set[str]) -> set[str]:
        return self.body.check(available | {"iteration"})

    def run(self, run: ExampleRun):
        value = None
        for iteration in range(self.max_iterations):
            run.state["iteration"] = iteration
            value = yield from self.body.run(run)
            if self.until(run.state):
                break
        return value


class Vote:
    """Self-consistency: k samples of `inner`, aggregated (majority by default, or a scorer over values).

    A single `Step` is sampled with the backend's own `n` (one prompt, k completions, shared prefix); a
    composite chain runs k branches side by side, batched in the same waves. The k values are kept in
    state[f"{output}_samples"] for maj@k and pass@k.
    """

    def __init__(self, inner, k: int, temperature: float = 0.7, output: str | None = None,
                 aggregate: Callable[[list], object] = majority_vote):
        if k < 1:
            raise ChainError(f"a vote needs k of at least 1, got {k}")
        if temperature <= 0 and k > 1:
            raise ChainError("voting over greedy samples repeats one answer k times: set temperature above 0")
        self.inner, self.k, self.temperature = inner, k, temperature
        self.output = output or inner.output
        self.aggregate = aggregate

    def check(self, available: set[str]) -> set[str]:
        return self.inner.check(available) | {self.output, f"{self.output}_samples", f"{self.output}_text"}

    def run(self, run: ExampleRun):
        text_key = f"{self.inner.output}_text"
        if isinstance(self.inner, Step) and self.inner.samples_natively:
            values = yield from self.inner.with_samples(self.k, self.temperature).run(run)
            values = list(values) if self.k > 1 else [values]
            texts = run.state.get(text_key)
            texts = list(texts) if self.k > 1 else [texts]
        else:
            branches = [run.fork(b) for b in range(self.k)]
            programs = [sampled(self.inner, self.temperature).run(branch) for branch in branches]
            values = yield from gather(programs)
            texts = [branch.state.get(text_key) for branch in branches]
        run.state[f"{self.output}_text"] = texts
        run.state[f"{self.output}_samples"] = values
        run.state[self.output] = self.aggregate(values)
        return run.state[self.output]


def sampled(node, temperature: float, seed: int | None = None):
    """A copy of `node` whose model steps sample at `temperature` (so branches of a vote differ); with `seed`,
    each example run's samples repeat (the run's seed_offset is added per branch)."""
    if isinstance(node, Step):  # CalcStep too: its copy keeps the calculator
        return node.with_samples(1, temperature, seed)
    if isinstance(node, Sequence):
        return Sequence(*(sampled(n, temperature, seed) for n in node.nodes))
    if isinstance(node, Decompose):
        return Decompose(sampled(node.plan, temperature, seed), sampled(node.solve, temperature, seed), node.output,
                         node.max_sub_questions)
    if isinstance(node, Loop):
        return Loop(sampled(node.body, temperature, seed), node.until, node.max_iterations)
    return node


class Compute:
    """Plain Python between steps: `fn(state) -> value`, stored under `output`; no model call."""

    kind = "compute"

    def __init__(self, name: str, fn: Callable[[dict], object], reads: set[str], output: str | None = None,
                 text_from: str | None = None, writes: set[str] = frozenset()):
        self.name, self.fn, self.read_names, self.output = name, fn, set(reads), output or name
        self.text_from = text_from
        """State key whose text this value was read from; copied to f"{output}_text" for the extractors."""
        self.writes = set(writes)
        """Other state keys `fn` sets, so that `check` knows later steps may read them."""

    def check(self, available: set[str]) -> set[str]:
        missing = sorted(self.read_names - available)
        if missing:
            raise ChainError(f"step {self.name!r} reads {', '.join(missing)}, which no earlier step produces: add a step that writes it")
        return available | self.writes | {self.output, f"{self.output}_text"}

    def run(self, run: ExampleRun):
        start = time.perf_counter()
        error = None
        try:
            value = self.fn(run.state)
        except Exception as exc:  # noqa: BLE001 - a failed tool step is recorded, the run goes on
            value, error = None, f"{type(exc).__name__}: {exc}"
        run.state[self.output] = value
        if self.text_from is not None:
            run.state[f"{self.output}_text"] = run.state.get(self.text_from)
        run.records.append(StepRecord(step=self.name, kind=self.kind, parsed=value, error=error,
                                      seconds=time.perf_counter() - start, branch=run.branch))
        return value
        yield  # a generator that never asks the model


class Program(Compute):
    """Program-aided step: run the Python that an earlier step wrote, isolated, and keep its result."""

    kind = "program"

    def __init__(self, name: str, code_from: str, output: str | None = None, timeout_s: float = 5.0,
                 memory_mb: int = 256, parse: Callable[[str], object] = _keep_text):
        from engine.sandbox.launch import extract_code, run_program

        def execute(state: dict):
            state[f"{self.output}_text"] = None
            state[f"{self.output}_program"] = None  # marks that a program, not text, makes this value
            code = extract_code(state[code_from] or "")
            if code is None:
                raise ValueError("the model wrote no Python program")
            result = run_program(code, timeout_s=timeout_s, memory_mb=memory_mb)
            state[f"{self.output}_program"] = {"ok": result.ok, "stdout": result.stdout[-2000:], "error": result.error}
            if not result.ok:
                raise RuntimeError(result.error)
            state[f"{self.output}_text"] = result.value
            return parse(result.value) if result.value is not None else None

        super().__init__(name, execute, {code_from}, output)


class Calculator(Compute):
    """Evaluate the arithmetic expression in state[expression_from] safely (no `eval`)."""

    kind = "calculator"

    def __init__(self, name: str, expression_from: str, output: str | None = None):
        from engine.sandbox.calculator import calculate

        super().__init__(name, lambda state: calculate(str(state[expression_from] or "")), {expression_from}, output)


def child_nodes(node) -> list:
    """The nodes a composite holds (Sequence.nodes, Decompose.plan/solve, Loop.body, Vote.inner)."""
    children = list(getattr(node, "nodes", ()) or ())
    children += [getattr(node, name) for name in ("plan", "solve", "body", "inner") if hasattr(node, name)]
    return children


def walk(node):
    """Every node of a chain, depth first, in the order they run."""
    yield node
    for child in child_nodes(node):
        yield from walk(child)
