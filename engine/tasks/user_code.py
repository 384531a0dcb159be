"""Python the user names as `FILE.py:NAME`: a chain (`--chain`, or a task file's `strategies:`) or a generator (a
task file's `source: {generator: ...}`).

One loader for all of them, so each kind fails the same way: the reference is checked for its form, the file is
imported as a module of its own (a fresh one each time, so an edited file is read again), NAME is looked up, and
whatever goes wrong (a missing file, a syntax error, an exception at import, a NAME that is not there) is one line
naming the file, the line and the fix. The file is the user's own code and runs in this process, as a config
script would. It lives beside the task files because a task file is what names most of these files; the chain
loader (`engine.chains.custom`) builds on it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path

from engine.errors import EngineError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The project's root (tasks/ and prompts/ live there): where a task file's own code is looked for after the
task file's folder."""


def parse_reference(reference: str, label: str, shape: str, error=EngineError) -> tuple[Path, str]:
    """`"gen.py:make"` -> (Path("gen.py"), "make"); the file is not looked for here (where it is looked for
    depends on who names it). `label` says who does ("--chain 'x'"), `shape` what NAME must be."""
    path_text, colon, name = reference.rpartition(":")
    if not colon or not path_text or not name:
        raise error(f"{label} must look like FILE.py:NAME ({shape}, defined in FILE.py)")
    path = Path(path_text).expanduser()
    if path.suffix != ".py":
        raise error(f"{label}: {path} is not a Python file; name a .py file, as in {path.stem or 'file'}.py:{name}")
    if not name.isidentifier():
        raise error(f"{label}: {name!r} is not a Python name; name a variable or function in {path}")
    return path, name


def is_reference(text: str) -> bool:
    """Meant as `FILE.py:NAME` (perhaps malformed: `gen.py` alone), as opposed to a built-in name (`cot`)."""
    return ":" in text or text.endswith(".py")


def find_in(path: Path, places: list[Path], label: str, error=EngineError) -> Path:
    """`path` itself when absolute, else the first of `places` holding it; the error names every place tried."""
    if path.is_absolute():
        tried = [path]
    else:
        tried = [place / path for place in places]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    where = ", ".join(str(p) for p in tried)
    raise error(f"{label}: {path} does not exist (looked for {where}); check the path")


def import_file(path: Path, what: str, error=EngineError):
    """Import FILE.py as a module of its own; `what` ("chain file", "generator file") words the errors."""
    digest = hashlib.sha256(f"{what}\0{path.resolve()}".encode()).hexdigest()[:12]
    module_name = f"engine_user_{what.split()[0]}_{digest}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        loader_spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise error(f"{path}:{exc.lineno}: syntax error ({exc.msg}): fix the {what}") from exc
    except EngineError as exc:
        sys.modules.pop(module_name, None)
        raise error(f"{path}:{line_in(exc, path)}: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - the user's module failed while loading: one line, with its line
        sys.modules.pop(module_name, None)
        raise error(f"{path}:{line_in(exc, path)}: {type(exc).__name__}: {exc} (while loading the {what})") from exc
    return module


def functions_of(module) -> list[str]:
    """Public functions the file itself defines (not those it imported): what an error offers as NAME."""
    return sorted(k for k, v in vars(module).items()
                  if not k.startswith("_") and inspect.isfunction(v) and v.__module__ == module.__name__)


def line_in(exc: BaseException, path: Path) -> str:
    """The last line of `path` in the exception's traceback, or "?" when the file is not in it."""
    target = str(path.resolve())
    line = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        if str(Path(frame.filename).resolve()) == target:
            line = str(frame.lineno)
    return line
