"""The public face (`from engine import ...`) and the house's rule that imports only run downwards.

Users' chain files, the README and prompts/ import from `engine` alone (tests/test_readme.py holds them to
it), so every name of `engine.__all__` must import and say in one line what it is. Inside the library, each
folder sits on a layer and imports only from lower layers, including imports inside functions: a backend
never reaches runs or chains, scoring never reaches a backend, and nothing imports the command line.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import engine

ENGINE = Path(engine.__file__).resolve().parent

LAYERS = {
    "errors": 0, "sampling": 0, "environment": 0, "progress": 0, "examples": 0, "heap": 0,
    "generation": 1, "files": 1,
    "scoring": 2, "sandbox": 2, "convert": 2,
    "models": 3, "synthetic": 3,
    "tasks": 4,
    "backends": 5,
    "chains": 6,
    "explorer": 7,
    "runs": 8,
    "finetune": 9,
    "cli": 10,
    "__main__": 11,
}
"""Each top-level module or folder of engine/ and its layer: an import must reach a strictly lower layer or
stay inside its own folder. A new module or folder must be placed here (the test below fails until it is)."""


@pytest.mark.parametrize("name", engine.__all__)
def test_every_public_name_imports_and_says_what_it_is(name):
    namespace: dict = {}
    exec(f"from engine import {name}", namespace)  # noqa: S102 - the import statement users write
    value = namespace[name]
    first_line = ((value.__doc__ or "").strip().splitlines() or [""])[0]
    assert first_line, f"engine.{name} has no docstring"
    assert not first_line.startswith(f"{getattr(value, '__name__', name)}("), f"engine.{name}: only the generated signature"


def test_unknown_public_names_fail_as_python_does():
    with pytest.raises(ImportError, match="cannot import name 'Stepp'"):
        exec("from engine import Stepp", {})  # noqa: S102


def test_import_engine_loads_nothing_heavy():
    """`python -m engine --help` starts at once: the public names load on first use, not on `import engine`."""
    code = ("import sys, engine; heavy = [m for m in ('scipy', 'torch', 'jinja2', 'transformers', 'engine.chains.nodes') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def _imports(path: Path):
    """Every `engine...` module a file imports, at any depth (inside functions too), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "engine":
                yield node.lineno, [f"engine.{alias.name}" for alias in node.names]
            elif node.module.startswith("engine."):
                yield node.lineno, [node.module]
        elif isinstance(node, ast.Import):
            yield node.lineno, [alias.name for alias in node.names if alias.name.startswith("engine")]


def _room(module: str) -> str:
    return module.split(".")[1].removesuffix(".py")


def test_imports_run_only_downwards():
    wrong, unplaced = [], set()
    for path in sorted(ENGINE.rglob("*.py")):
        relative = path.relative_to(ENGINE)
        if relative.as_posix() == "__init__.py":
            continue  # the public face stands above everything and imports only under TYPE_CHECKING
        room = relative.parts[0].removesuffix(".py")
        if room not in LAYERS:
            unplaced.add(room)
            continue
        for line, modules in _imports(path):
            for module in modules:
                if module == "engine":
                    wrong.append(f"engine/{relative}:{line} imports the public face `engine` (import the module)")
                    continue
                target = _room(module)
                if target == room:
                    continue
                if target not in LAYERS:
                    unplaced.add(target)
                elif LAYERS[target] >= LAYERS[room]:
                    wrong.append(f"engine/{relative}:{line} ({room}, layer {LAYERS[room]}) imports {module} "
                                 f"({target}, layer {LAYERS[target]})")
    assert not unplaced, f"place these in LAYERS: {sorted(unplaced)}"
    assert not wrong, "imports that run upwards or sideways:\n" + "\n".join(wrong)


def test_the_layer_test_sees_imports_inside_functions(tmp_path):
    """The rule holds for imports inside functions too (a lazy import is still an arrow)."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from engine.runs.evaluate import run_eval\n    import engine.cli.main\n")
    assert [modules for _, modules in _imports(sample)] == [["engine.runs.evaluate"], ["engine.cli.main"]]


def _module_file(module: str) -> Path | None:
    parts = module.split(".")[1:]
    for candidate in (ENGINE.joinpath(*parts).with_suffix(".py"), ENGINE.joinpath(*parts, "__init__.py")):
        if parts and candidate.is_file():
            return candidate
    return None


def test_no_import_circles():
    """No file reaches itself through its imports (function-level ones included), inside a folder or across."""
    graph: dict[Path, set[Path]] = {}
    for path in sorted(ENGINE.rglob("*.py")):
        if path == ENGINE / "__init__.py":
            continue
        targets = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engine."):
                submodules = {alias.name: _module_file(f"{node.module}.{alias.name}") for alias in node.names}
                targets |= set(submodules.values())
                if None in submodules.values():  # a name defined in the module itself, not only its submodules
                    targets.add(_module_file(node.module))
            elif isinstance(node, ast.Import):
                targets |= {_module_file(alias.name) for alias in node.names if alias.name.startswith("engine.")}
        graph[path] = {t for t in targets if t is not None and t != path and t != ENGINE / "__init__.py"}
    state: dict[Path, int] = {}
    stack: list[Path] = []

    def visit(node: Path) -> list[Path] | None:
        state[node], _ = 1, stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node], _ = 2, stack.pop()
        return None

    for start in sorted(graph):
        if start not in state and (circle := visit(start)):
            pytest.fail("import circle: " + " -> ".join(str(p.relative_to(ENGINE)) for p in circle))
