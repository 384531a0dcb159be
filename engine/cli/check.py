"""`python -m engine check`: find what is wrong with a chain, a template or a task before any model loads.

Reports, each as one line that names the file (and line where there is one): template syntax errors, templates
that are not found, steps naming an unknown parser, values a step reads that neither the item nor an earlier
step writes, and a chain that never writes `answer`. Loading the model is what makes a mistake found at run
time cost a minute; this costs a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from engine.chains.nodes import walk
from engine.errors import EngineError


@dataclass
class CheckReport:
    subject: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if self.problems:
            return [f"problem: {p}" for p in self.problems] + [f"{len(self.problems)} problem(s) in {self.subject}"]
        return self.notes + [f"ok: {self.subject}"]


def locate_template(text: str) -> tuple[str, tuple[str, ...]]:
    """A template given on the command line: a file path (its folder becomes a template folder), else a name
    under `prompts/` such as `cot/reason.jinja`."""
    path = Path(text).expanduser()
    if path.is_file():
        return path.name, (str(path.resolve().parent),)
    return text, ()


def template_problems(name: str, extra_dirs: tuple[str, ...]) -> list[str]:
    """Syntax errors (file:line) and missing files in `name` and every template it includes or extends."""
    from engine.chains.templates import build_environment, template_trees

    env = build_environment(extra_dirs)
    problems = []
    for current, _, tree in template_trees(env, name):
        if isinstance(tree, jinja2.TemplateNotFound):
            where = ", ".join(env.loader.searchpath)
            via = "" if current == name else f" (included by {name})"
            problems.append(f"template {current!r}{via} not found (looked in {where})")
        elif isinstance(tree, jinja2.TemplateSyntaxError):
            problems.append(f"{tree.filename or current}:{tree.lineno}: template syntax error: {tree.message}")
    return problems


def _task_context(task: str | None, data: str | None, depth: int | None):
    """(spec, names an item provides, the task file's folder) for --task; (None, the task-wide names, None)
    without one."""
    from engine.chains.strategies import STATE_KEYS
    from engine.tasks.spec import load_examples, load_spec

    if task is None:
        return None, set(STATE_KEYS), None
    spec, base = load_spec(task)
    examples = load_examples(spec, base, None, depth, 0, data)
    return spec, set(STATE_KEYS) | set(examples[0].fields), base


def check_chain(reference: str | None, strategy: str | None, task: str | None, data: str | None = None,
                depth: int | None = None) -> CheckReport:
    """Load the chain (a `FILE.py:NAME` or a built-in strategy), then check its templates, parsers and wiring."""
    from engine.chains.nodes import Step
    from engine.chains.strategies import check_wiring, select_chain

    report = CheckReport(reference or f"strategy {strategy} on {task}")
    try:
        spec, available, base = _task_context(task, data, depth)
        if spec is None:
            raise EngineError("check needs --task (a task name or file) to know what each item provides: the chain's "
                              "first step reads the item's fields")
        label, chain = select_chain(spec, strategy, reference, base=base)
    except EngineError as exc:
        report.problems.append(str(exc))
        return report
    steps = [node for node in walk(chain) if isinstance(node, Step)]
    for step in steps:
        report.problems += template_problems(step.template, step.template_dirs)
    if report.problems:
        return report
    try:
        produced = check_wiring(chain, available, label)
    except EngineError as exc:
        report.problems.append(str(exc))
        return report
    for node in walk(chain):
        name = getattr(node, "name", None)
        if name is None:
            continue
        reads = sorted(node.reads()) if isinstance(node, Step) else sorted(getattr(node, "read_names", ()))
        what = f"template {node.template}" if isinstance(node, Step) else getattr(node, "kind", type(node).__name__)
        report.notes.append(f"step {name} ({what}): reads {', '.join(reads) or 'nothing'}; writes {node.output}")
    report.notes.append(f"the chain writes: {', '.join(sorted(produced - available))}")
    return report


def check_template(template: str, task: str | None, data: str | None = None, depth: int | None = None) -> CheckReport:
    """A template alone: syntax, includes, and (with --task) the variables an item would not provide."""
    from engine.chains.templates import required_variables

    name, dirs = locate_template(template)
    report = CheckReport(f"template {template}")
    report.problems += template_problems(name, dirs)
    if report.problems:
        return report
    reads = required_variables(name, dirs)
    report.notes.append(f"reads: {', '.join(sorted(reads)) or 'nothing'}")
    if task is not None:
        try:
            _, available, _ = _task_context(task, data, depth)
        except EngineError as exc:
            report.problems.append(str(exc))
            return report
        missing = sorted(reads - available)
        if missing:
            report.problems.append(f"template {template} reads {', '.join(missing)}, which items of {task} do not "
                                   f"have (they have: {', '.join(sorted(available))}): in a chain an earlier step "
                                   "must write it; with render, pass --set NAME=VALUE")
    return report


def check_task(task: str, data: str | None = None, depth: int | None = None) -> CheckReport:
    """A task file: it parses, its data loads, and every strategy it lists (its own chains too: templates, parsers
    and wiring) is wired correctly on its items."""
    report = CheckReport(f"task {task}")
    try:
        from engine.tasks.spec import load_spec

        spec, _ = load_spec(task)
        _task_context(task, data, depth)
    except EngineError as exc:
        report.problems.append(str(exc))
        return report
    for strategy in spec.strategy_names():
        one = check_chain(None, strategy, task, data, depth)
        report.problems += [f"strategy {strategy}: {p}" for p in one.problems]
    report.notes.append(f"strategies checked: {', '.join(spec.strategy_names())}")
    return report
