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

import hashlib
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path

from engine.chains.nodes import template_folder
from engine.errors import ChainError, EngineError


def split_reference(reference: str) -> tuple[Path, str]:
    """`"chains/mine.py:solve"` -> (Path("chains/mine.py"), "solve"), or a ChainError saying what form to use."""
    path_text, colon, name = reference.rpartition(":")
    if not colon or not path_text or not name:
        raise ChainError(f"--chain {reference!r} must look like FILE.py:NAME (a chain, or a function of the task "
                         "spec returning one, defined in FILE.py)")
    path = Path(path_text).expanduser()
    if path.suffix != ".py":
        raise ChainError(f"--chain {reference!r}: {path} is not a Python file; name a .py file, as in chains.py:{name}")
    if not path.is_file():
        raise ChainError(f"--chain {reference!r}: {path} does not exist; check the path (relative to {Path.cwd()})")
    if not name.isidentifier():
        raise ChainError(f"--chain {reference!r}: {name!r} is not a Python name; name a variable or function in {path}")
    return path, name


def is_chain(value) -> bool:
    """Anything with the chain protocol: `check(available)` and a generator `run(example_run)`."""
    return not inspect.isclass(value) and callable(getattr(value, "run", None)) and callable(getattr(value, "check", None))


def load_chain(reference: str, spec):
    """The chain NAME from FILE.py (calling it with `spec` when it is a function), built with FILE's folder as a
    template folder."""
    path, name = split_reference(reference)
    with template_folder(path.resolve().parent):
        module = _import(path)
        if not hasattr(module, name):
            found = sorted(k for k, v in vars(module).items() if not k.startswith("_") and (
                is_chain(v) or (inspect.isfunction(v) and v.__module__ == module.__name__)))
            raise ChainError(f"{path} defines no {name!r}: name one of {', '.join(found) or '(nothing chain-like)'}")
        value = getattr(module, name)
        if not is_chain(value):
            if not callable(value) or inspect.isclass(value):
                raise ChainError(f"{path}: {name} is a {type(value).__name__}, not a chain: bind NAME to a chain "
                                 "(Step, Sequence, ...) or to a function of the task spec that returns one")
            value = _call_factory(value, spec, path, name)
    return value


def _import(path: Path):
    """Import FILE.py as a module of its own (a fresh one each time, so an edited file is read again)."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    module_name = f"engine_user_chain_{digest}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        loader_spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise ChainError(f"{path}:{exc.lineno}: syntax error ({exc.msg}): fix the chain file") from exc
    except EngineError as exc:
        sys.modules.pop(module_name, None)
        raise ChainError(f"{path}:{_line_in(exc, path)}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - the user's module failed while loading: one line, with its line
        sys.modules.pop(module_name, None)
        raise ChainError(f"{path}:{_line_in(exc, path)}: {type(exc).__name__}: {exc} (while loading the chain "
                         "file)") from exc
    return module


def _call_factory(factory, spec, path: Path, name: str):
    try:
        value = factory(spec)
    except TypeError as exc:
        if _line_in(exc, path) == "?":  # the call itself failed: wrong signature
            raise ChainError(f"{path}: {name} must take one argument, the task spec (as in `def {name}(spec):`), "
                             f"and return a chain ({exc})") from exc
        raise ChainError(f"{path}:{_line_in(exc, path)}: TypeError: {exc} (in {name}(spec))") from exc
    except EngineError as exc:
        raise ChainError(f"{path}:{_line_in(exc, path)}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001
        raise ChainError(f"{path}:{_line_in(exc, path)}: {type(exc).__name__}: {exc} (in {name}(spec))") from exc
    if not is_chain(value):
        raise ChainError(f"{path}: {name}(spec) returned a {type(value).__name__}, not a chain: return a Step, "
                         "Sequence or another chain node")
    return value


def _line_in(exc: BaseException, path: Path) -> str:
    """The last line of `path` in the exception's traceback, or "?" when the file is not in it."""
    target = str(path.resolve())
    line = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        if str(Path(frame.filename).resolve()) == target:
            line = str(frame.lineno)
    return line


def chain_label(reference: str) -> str:
    """The name a custom chain's runs go by (folder names, summaries): NAME of FILE.py:NAME."""
    return split_reference(reference)[1]
