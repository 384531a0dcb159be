"""Your own chain from a Python file: `--chain FILE.py:NAME` for `eval`, `render`, `check` and `finetune`.

NAME is a chain (a `Step`, `Sequence`, `Decompose`, ... built at the file's top level) or a function of the
task spec that returns one (so one file can serve tasks with different parsers). The file's folder is a
template folder: its steps find the `.jinja` files beside it by bare name, before the built-in `prompts/`.

The chain file is the user's own code and runs in this process, as a config script would; the templates and
model outputs it handles stay sandboxed as everywhere else. Whatever goes wrong while loading it (a missing
file, a syntax error, an exception at import, a NAME that is not there or is not a chain) is one line naming
the file, the line and how to fix it.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from engine.chains.nodes import template_folder
from engine.errors import ChainError, EngineError
from engine.tasks.spec import CHAIN_SHAPE
from engine.tasks.user_code import find_in, functions_of, import_file, line_in, parse_reference


def split_reference(reference: str) -> tuple[Path, str]:
    """`"chains/mine.py:solve"` -> (Path("chains/mine.py"), "solve"), or a ChainError saying what form to use."""
    path, name = parse_reference(reference, f"--chain {reference!r}", CHAIN_SHAPE, ChainError)
    if not path.is_file():
        raise ChainError(f"--chain {reference!r}: {path} does not exist; check the path (relative to {Path.cwd()})")
    return path, name


def is_chain(value) -> bool:
    """Anything with the chain protocol: `check(available)` and a generator `run(example_run)`."""
    return not inspect.isclass(value) and callable(getattr(value, "run", None)) and callable(getattr(value, "check", None))


def load_chain(reference: str, spec):
    """The chain NAME from FILE.py (calling it with `spec` when it is a function), built with FILE's folder as a
    template folder."""
    return _load(*split_reference(reference), spec)


def load_task_chain(reference: str, spec, places: list[Path]):
    """A chain the task file lists among its strategies, its FILE looked for in `places` (the task file's folder,
    then the project root: `prompts/NAME/chain.py:NAME` works from tasks/, and a user's task file can name a
    chain file beside it)."""
    label = f"task {spec.name}: strategy {reference!r}"
    path, name = parse_reference(reference, label, CHAIN_SHAPE, ChainError)
    return _load(find_in(path, places, label, ChainError), name, spec)


def _load(path: Path, name: str, spec):
    with template_folder(path.resolve().parent):
        module = import_file(path, "chain file", ChainError)
        if not hasattr(module, name):
            found = sorted(set(functions_of(module)) | {k for k, v in vars(module).items()
                                                        if not k.startswith("_") and is_chain(v)})
            raise ChainError(f"{path} defines no {name!r}: name one of {', '.join(found) or '(nothing chain-like)'}")
        value = getattr(module, name)
        if not is_chain(value):
            if not callable(value) or inspect.isclass(value):
                raise ChainError(f"{path}: {name} is a {type(value).__name__}, not a chain: bind NAME to a chain "
                                 "(Step, Sequence, ...) or to a function of the task spec that returns one")
            value = _call_factory(value, spec, path, name)
    writer = getattr(module, GOLD_WRITER, None)
    if callable(writer):  # for `finetune --source gold` (engine.finetune.gold.chain_writer)
        value.gold_writer = writer
    return value


GOLD_WRITER = "gold"
"""A chain file's optional gold writer, `gold(step_name, example, state) -> str`: what a perfect model writes at
each model step of its chain, so that `finetune --source gold` can train on the chain."""


def _call_factory(factory, spec, path: Path, name: str):
    try:
        value = factory(spec)
    except TypeError as exc:
        if line_in(exc, path) == "?":  # the call itself failed: wrong signature
            raise ChainError(f"{path}: {name} must take one argument, the task spec (as in `def {name}(spec):`), "
                             f"and return a chain ({exc})") from exc
        raise ChainError(f"{path}:{line_in(exc, path)}: TypeError: {exc} (in {name}(spec))") from exc
    except EngineError as exc:
        raise ChainError(f"{path}:{line_in(exc, path)}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001
        raise ChainError(f"{path}:{line_in(exc, path)}: {type(exc).__name__}: {exc} (in {name}(spec))") from exc
    if not is_chain(value):
        raise ChainError(f"{path}: {name}(spec) returned a {type(value).__name__}, not a chain: return a Step, "
                         "Sequence or another chain node")
    return value


def chain_label(reference: str) -> str:
    """The name a custom chain's runs go by (folder names, summaries): NAME of FILE.py:NAME."""
    return split_reference(reference)[1]
