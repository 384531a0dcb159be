"""Task files: YAML validated by pydantic (unknown keys rejected) -> examples with gold labels.

A task file names where the data is, which fields hold the question and the gold answer, the answer type,
the parser and metric, the default strategies and, optionally, few-shot exemplars. Paths may start with
`{data}`, the shared data folder (ENGINE_DATA, default `../shared/data` beside the project).
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import EngineError, TaskError, first_problem
from engine.examples import Example
from engine.tasks.user_code import PROJECT_ROOT, is_reference, parse_reference

TASKS_DIR = PROJECT_ROOT / "tasks"
ANSWER_TYPES = ("number", "choice", "yes-no", "bool", "free-text", "nli", "sudoku")
STRATEGIES = ("direct", "cot", "fewshot-cot", "decompose", "pal", "sc", "calc", "stepwise")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(Strict):
    """Where the examples come from: a `generator`, or a file `path` and/or a hub dataset `hf`.

    With both `path` and `hf`, the local file wins when it exists; the hub is the fallback for users online.
    """

    format: Literal["jsonl", "json", "bbh"] = "jsonl"
    """jsonl: one object per line; json: a list of objects; bbh: BIG-Bench-Hard's {"examples": [...]}."""
    path: str | None = None
    """Data file; `{data}` stands for the shared data folder."""
    generator: str | None = None
    """A built-in generator (arithmetic, shuffled-objects, last-letters, sudoku), or your own as `FILE.py:NAME`: a
    function `(count, depth, seed)` returning rows with the fields a data file has (`engine.tasks.generators`);
    FILE is looked for beside the task file, then at the project root. Deterministic from the seed."""
    depth: int = 3
    """Number of reasoning steps for synthetic tasks (overridden by --depth)."""
    count: int = 100
    """How many items a generator makes (--limit caps it)."""
    hf: dict | None = None
    """Hugging Face `datasets.load_dataset` arguments (path, name, split), for users who are online."""

    @model_validator(mode="after")
    def _one_source(self):
        if self.generator is not None and (self.path or self.hf):
            raise ValueError("source takes a generator or data (path, hf), not both")
        if self.generator is None and not (self.path or self.hf):
            raise ValueError("source needs one of path, generator or hf")
        return self


class Exemplars(Strict):
    """Few-shot exemplars for `fewshot-cot`."""

    path: str
    format: Literal["gsm8k", "bbh-cot"] = "gsm8k"
    count: int = Field(5, ge=1, le=16)


class TaskSpec(Strict):
    """A task file: where its items come from, which fields they have, how answers are parsed and scored."""

    name: str
    description: str = ""
    source: Source
    question_field: str = "question"
    question_format: str | None = None
    """A str.format pattern over row fields, e.g. "Premise: {premise}\\nHypothesis: {hypothesis}"."""
    answer_field: str = "answer"
    steps_field: str | None = None
    """A row field holding the gold intermediate results in order (a list, e.g. [12, 36, 30]): per-step accuracy
    and the first wrong step are then reported for this data, as for the generated tasks. Never shown to the
    model (templates do not receive it)."""
    gold_pattern: str | None = None
    """A regex whose group 1 is the gold answer inside the answer field (GSM8K: "#### (.+)$")."""
    answer_type: Literal["number", "choice", "yes-no", "bool", "free-text", "nli", "sudoku"]
    parser: str
    """Name of the main extractor (see engine.scoring.parsers.PARSERS)."""
    extra_parsers: list[str] = []
    """More extractors reported side by side (GSM8K: strict and flexible)."""
    classes: list[str] = []
    """Label set for classification tasks: enables the per-class report."""
    strategies: list[str] = ["direct", "cot"]
    """The built-in strategies this task runs (others are refused), and its own chains as `FILE.py:NAME` (a
    chain, or a function of the task spec returning one), run as `--strategy NAME`; FILE is looked for beside
    the task file, then at the project root (so `prompts/NAME/chain.py:NAME` works from tasks/)."""
    default_strategy: str = "cot"
    """A built-in strategy, or the NAME of one of the task's own chains."""
    exemplars: Exemplars | None = None
    instruction: str = ""
    """One line shown before the question in every strategy (e.g. "Answer with the letter of the option.")."""
    answer_hint: str = ""
    """How the final answer should look, e.g. "a number" or "one of (A)-(E)"."""
    chance: float | None = Field(None, ge=0, le=1)
    """The accuracy of a uniform guess among the task's answers, where that is plain (0.5 for yes/no, 1/3 for
    three options): shown beside a chain's floor, which an honest chain does not beat without a model."""
    train_depths: str | None = None
    """The depths a generator task writes training items at (`finetune --train-task` reads it when --depths is
    not given), e.g. "3,5" for tracking trained on three and five people only."""
    train: Source | None = None
    """Training split for `finetune` (a data file); the evaluation items in `source` are never trained on."""
    reasoning_field: str | None = None
    """Field of the train split holding a worked solution (gold reasoning), read only to write gold chains."""

    @field_validator("train_depths")
    @classmethod
    def _train_depths_parse(cls, value: str | None) -> str | None:
        if value is not None:
            parse_depths(value)
        return value

    @field_validator("question_format")
    @classmethod
    def _plain_fields(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        try:
            fields = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
        except ValueError as exc:
            raise ValueError(f"{pattern!r} is not a format pattern ({exc}): write fields as {{name}} and a "
                             "literal brace as {{ or }}") from exc
        for name in fields:
            if not name.isidentifier():
                raise ValueError(f"{{{name}}} in {pattern!r} is not a field name: name a row field, "
                                 "as in {question}")
        if not fields:
            raise ValueError(f"{pattern!r} names no field: use {{field}} for each row field to show")
        return pattern

    @field_validator("gold_pattern")
    @classmethod
    def _one_group(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        try:
            groups = re.compile(pattern).groups
        except re.error as exc:
            raise ValueError(f"{pattern!r} is not a regular expression ({exc})") from exc
        if groups < 1:
            raise ValueError(f"{pattern!r} has no group: put the answer in parentheses, as in '#### (.+)$'")
        return pattern

    @model_validator(mode="after")
    def _names_known(self):
        from engine.scoring.parsers import PARSERS

        for name in [self.parser, *self.extra_parsers]:
            if name not in PARSERS:
                raise ValueError(f"unknown parser {name!r}; known: {', '.join(sorted(PARSERS))}")
        if self.answer_type == "nli" and not self.classes:
            raise ValueError("an nli task needs its classes (entailment, contradiction, neutral)")
        return self


    @field_validator("strategies")
    @classmethod
    def _strategies_known(cls, entries: list[str]) -> list[str]:
        own_chains(entries)  # refuses a malformed entry, or a NAME taken twice
        for name in entries:
            if not is_reference(name) and name not in STRATEGIES:
                raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)} (a chain of the task's "
                                 "own is listed as FILE.py:NAME)")
        return entries

    @field_validator("default_strategy")
    @classmethod
    def _default_known(cls, name: str, info) -> str:
        own = own_chains(info.data.get("strategies") or [])
        if name not in STRATEGIES and name not in own:
            mine = f", or this task's own chains: {', '.join(own)}" if own else ""
            raise ValueError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}{mine}")
        return name

    def own_chains(self) -> dict[str, str]:
        """The task's own chains: NAME (what `--strategy` takes) -> `FILE.py:NAME` as the task file lists it."""
        return own_chains(self.strategies)

    def strategy_names(self) -> list[str]:
        """What `--strategy` takes for this task, in the task file's order: built-in names, own chains' NAMEs."""
        return [entry.rpartition(":")[2] if is_reference(entry) else entry for entry in self.strategies]


CHAIN_SHAPE = "a chain, or a function of the task spec returning one"


def own_chains(entries: list[str]) -> dict[str, str]:
    """NAME -> `FILE.py:NAME` for the entries of a `strategies:` list that are chains of the task's own; a NAME
    that a built-in strategy or another entry has is refused, so `--strategy NAME` always says which one runs."""
    own: dict[str, str] = {}
    for entry in entries:
        if not is_reference(entry):
            continue
        _, name = parse_reference(entry, f"strategies entry {entry!r}", CHAIN_SHAPE, ValueError)
        if name in STRATEGIES:
            raise ValueError(f"strategies entry {entry!r}: {name} is also a built-in strategy; name the chain "
                             "otherwise, so that --strategy says which one runs")
        if name in own:
            raise ValueError(f"strategies entries {own[name]!r} and {entry!r} are both named {name}: "
                             "--strategy NAME must say which one runs")
        own[name] = entry
    return own


def data_dir() -> Path:
    return Path(os.environ.get("ENGINE_DATA") or PROJECT_ROOT.parent / "shared" / "data")


def expand_path(path: str, base: Path) -> Path:
    expanded = path.replace("{data}", str(data_dir()))
    candidate = Path(expanded).expanduser()
    return candidate if candidate.is_absolute() else (base / candidate)


def task_names() -> list[str]:
    return sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))


def load_spec(task: str) -> tuple[TaskSpec, Path]:
    """A task name from tasks/ or a path to a task file -> validated spec and the folder it came from."""
    path = Path(task)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        path = TASKS_DIR / f"{task}.yaml"
    if not path.exists():
        raise TaskError(f"unknown task {task!r}: use one of {', '.join(task_names())} or a path to a task file")
    from engine.tasks.datasets import read_text

    text = read_text(path, "task file")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise TaskError(f"task file {where}: not valid YAML ({problem})") from exc
    if not isinstance(raw, dict):
        raise TaskError(f"task file {path} must be a mapping of keys to values")
    try:
        return TaskSpec(**raw), path.parent
    except ValidationError as exc:
        where, problem = first_problem(exc)
        line = _line_of(text, where)
        raise TaskError(f"task file {path}{f':{line}' if line else ''}: {where or 'task'}: {problem}") from exc


def _line_of(text: str, where: str) -> int | None:
    """The line of the YAML key a validation error points at ("source.path": the `path:` under `source:`)."""
    lines = text.splitlines()
    found, start = None, 0
    for part in where.split("."):
        if not part or part.isdigit():
            continue
        key = re.compile(rf"^[\s-]*['\"]?{re.escape(part)}['\"]?\s*:")
        found = next((i for i in range(start, len(lines)) if key.match(lines[i])), None)
        if found is None:
            return None
        start = found + 1
    return None if found is None else found + 1


def parse_depths(text: str) -> list[int]:
    """ "1-4" -> [1, 2, 3, 4]; "1-4,6,8" -> [1, 2, 3, 4, 6, 8].

    >>> parse_depths("1-3,6")
    [1, 2, 3, 6]
    """
    depths: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                if low > high:
                    raise ValueError
                depths.update(range(low, high + 1))
            elif part:
                depths.add(int(part))
        except ValueError:
            raise EngineError(f"depths must look like 1-4 or 1-4,6,8, got {text!r}") from None
    if not depths or min(depths) < 1:
        raise EngineError(f"depths must be whole numbers of at least 1, got {text!r}")
    return sorted(depths)


def load_examples(spec: TaskSpec, base: Path, limit: int | None = None, depth: int | None = None,
                  seed: int = 0, data_path: str | None = None) -> list[Example]:
    """Load (or generate) the task's examples; errors name the file and line of a bad row."""
    from engine.tasks.datasets import examples_from_rows, read_rows

    source = spec.source
    if source.generator and not data_path:
        from engine.tasks.generators import generate_examples

        count = limit if limit is not None else source.count
        return generate_examples(spec, base, count, depth if depth is not None else source.depth, seed)
    local = Path(data_path) if data_path else expand_path(source.path, base) if source.path else None
    if source.hf and not data_path and (local is None or not local.exists()):
        rows = _hf_rows(source.hf)
        where = f"hf:{source.hf.get('path')}"
    else:
        rows = read_rows(local, "bbh" if data_path is None and source.format == "bbh" else _format_of(local, source))
        where = str(local)
    examples = examples_from_rows(rows, spec, where)
    return examples[:limit] if limit else examples


def _format_of(path: Path, source: Source) -> str:
    if path.suffix == ".jsonl":
        return "jsonl"
    return source.format if source.format != "jsonl" else "json"


def _hf_rows(arguments: dict):
    try:
        import datasets
    except ImportError as exc:
        raise TaskError("loading from the Hugging Face hub needs `datasets`: pip install -e '.[datasets]'") from exc
    try:
        dataset = datasets.load_dataset(**arguments)
    except Exception as exc:  # noqa: BLE001 - offline, unknown name, ...: one line for the user
        raise TaskError(f"could not load {arguments} from the hub ({str(exc).splitlines()[0]}): pass --data FILE instead") from exc
    return [(i + 1, dict(row)) for i, row in enumerate(dataset)]
