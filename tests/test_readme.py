"""Every code example in README.md runs as written: its Python blocks, and each shell example whose verb works
offline (check, render, models, tasks, verify, compare, report, --help). A README example that stops working
fails here; where an example changes, this test follows the README, never the other way round.

The examples presume a user's own files (`my.py`, `my/answer.jinja`, `my-task.yaml`, run folders `runs/A` and
`runs/B`); the test writes those into a fresh folder, beside a link to the project's `prompts/`, and runs each
command there exactly as the README prints it. A file the README shows under a caption of the form
"`PATH`:" is written to PATH from the README's own text.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

import engine
from engine.backends import ScriptedBackend
from engine.cli.main import main

README = Path(__file__).resolve().parents[1] / "README.md"
REPO = README.parent
OFFLINE_VERBS = {"check", "render", "models", "tasks", "verify", "compare", "report", "--help"}
NEEDS_THE_MODEL = ("--run",)
"""Options that run the real default model: those commands carry the `model` marker."""


def blocks(language: str) -> list[tuple[int, str, str]]:
    """(line number, caption, text) of each fenced block of `language`; the caption is the backticked path of a
    line ending "`PATH`:" just before the block, else ""."""
    lines = README.read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = lines[index].strip()
        if opening == f"```{language}":
            indent = len(lines[index]) - len(lines[index].lstrip())
            end = next(j for j in range(index + 1, len(lines)) if lines[j].strip() == "```")
            body = "\n".join(line[indent:] for line in lines[index + 1:end]) + "\n"
            before = next((lines[j].strip() for j in range(index - 1, -1, -1) if lines[j].strip()), "")
            caption = re.search(r"`([\w./-]+)`:$", before)
            found.append((index + 1, caption.group(1) if caption else "", body))
            index = end
        index += 1
    return found


def shell_commands() -> list[tuple[int, str]]:
    """(line, command) for every `python -m engine VERB ...` line of the README's bash blocks, continuations
    joined and trailing comments dropped."""
    commands = []
    for line_number, _, text in blocks("bash"):
        joined = re.sub(r"\\\n\s*", " ", text)
        for offset, line in enumerate(joined.splitlines()):
            words = shlex.split(line, comments=True)
            if words[:3] == ["python", "-m", "engine"] and len(words) > 3:
                commands.append((line_number + offset + 1, shlex.join(words)))
    return commands


def offline(commands):
    for line, command in commands:
        verb = shlex.split(command)[3]
        if verb in OFFLINE_VERBS:
            marks = [pytest.mark.model] if any(option in command for option in NEEDS_THE_MODEL) else []
            yield pytest.param(command, id=f"README:{line}", marks=marks)


MY_CHAIN = '''from engine import SamplingSettings, Sequence, Step


def mine(spec):
    return Sequence(Step("working", "cot/reason.jinja", SamplingSettings(max_tokens=64)),
                    Step("answer", "direct/answer.jinja", SamplingSettings(max_tokens=16), parse=spec.parser))
'''


def yaml_block_named(name: str) -> str:
    (text,) = [text for _, _, text in blocks("yaml") if f"name: {name}" in text]
    return text


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """A fresh folder with what the examples presume: the user's files, two runs of the same items, prompts/."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prompts").symlink_to(REPO / "prompts", target_is_directory=True)
    for _, caption, text in blocks("jinja") + blocks("python") + blocks("yaml"):
        if caption:
            (tmp_path / caption).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / caption).write_text(text, encoding="utf-8")
    (tmp_path / "my.py").write_text(MY_CHAIN, encoding="utf-8")
    (tmp_path / "my").mkdir(exist_ok=True)
    (tmp_path / "my" / "answer.jinja").write_text('{{ role("user") }}{{ question }}\n\nThe answer is\n')
    (tmp_path / "my-task.yaml").write_text(yaml_block_named("my-task"), encoding="utf-8")
    rows = [{"question": f"Start with {n}. Add 5. Double it. Subtract 1. What is the result?", "answer": 2 * (n + 5) - 1,
             "steps": [n + 5, 2 * (n + 5), 2 * (n + 5) - 1]} for n in range(3)]
    (tmp_path / "my_items.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    for name, answer in (("A", "The answer is 12."), ("B", "The answer is 3.")):
        engine.run_eval(engine.EvalSettings(task="arithmetic", strategy="direct", depth=1, limit=4, out=f"runs/{name}"),
                        backend=ScriptedBackend(lambda request, answer=answer: answer), progress=False)
    return tmp_path


def test_the_readme_has_examples_of_each_kind():
    """Guards the extraction itself: if it found nothing, every test below would pass vacuously."""
    verbs = {shlex.split(command)[3] for _, command in shell_commands()}
    assert {"check", "render", "compare", "verify", "report", "models", "eval", "finetune"} <= verbs
    assert len(blocks("python")) >= 2 and any(caption for _, caption, _ in blocks("jinja"))


@pytest.mark.parametrize("command", list(offline(shell_commands())))
def test_shell_example_runs(command, user_folder, capsys):
    argv = shlex.split(command)[3:]
    try:
        code = main(argv)
    except SystemExit as exc:  # --help exits through argparse
        code = exc.code
    captured = capsys.readouterr()
    assert code == 0, f"{command} exited {code}: {captured.err.strip()[-400:]}"
    assert captured.out.strip(), f"{command} printed nothing"


def answers_every_request(request) -> str:
    """What a model that reasons a little and answers 12 would write."""
    text = request.prompt or request.messages[-1][1]
    return "The answer is 12." if "final number" in text or "The answer is X" not in text else "7 + 5 = 12, so 12."


@pytest.mark.parametrize("line,caption,code", [pytest.param(*b, id=f"README:{b[0]}") for b in blocks("python")])
def test_python_example_runs(line, caption, code, user_folder, monkeypatch, capsys):
    """Each Python block runs as written, its backend scripted (`load_backend` answers without a model); a block
    that defines chains has each chain checked and run over a generated task through the public API."""
    scripted = ScriptedBackend(answers_every_request)
    monkeypatch.setattr(engine, "load_backend", lambda *args, **kwargs: scripted)
    namespace: dict = {}
    exec(compile(code, f"README.md:{line}", "exec"), namespace)  # noqa: S102 - the README's own example
    if "run_all" in code:  # the example runs a chain itself: it must have asked the backend, and printed answers
        assert scripted.calls and capsys.readouterr().out.strip() == str(["12", "12"])
        return
    made = generators(namespace)
    if made:  # a task file's own generator: the README's task file naming it loads its rows as items
        for name in made:
            (task,) = [c for _, c, text in blocks("yaml") if f"generator: {caption}:{name}" in text]
            spec, base = engine.load_spec(str(user_folder / task))
            items = engine.load_examples(spec, base, limit=5, depth=4, seed=1)
            assert len(items) == 5 and all(len(item.gold_steps) == 4 for item in items)
            assert engine.load_examples(spec, base, limit=5, depth=4, seed=1) == items
        return
    factories = {name: value for name, value in namespace.items() if callable(value) and not name.startswith("_")
                 and getattr(value, "__module__", None) is None}
    assert factories, f"README.md:{line} defines no chain to run"
    chain_file = user_folder / "readme_chain.py"
    chain_file.write_text(code, encoding="utf-8")
    for template in ("answer.jinja",):  # the README shows working.jinja (written above) and describes this one
        (user_folder / template).write_text((REPO / "prompts" / "plan-answer" / template).read_text())
    for name in factories:
        assert main(["check", "--chain", f"{chain_file}:{name}", "--task", "arithmetic"]) == 0
        summary = engine.run_eval(engine.EvalSettings(task="arithmetic", chain=f"{chain_file}:{name}", depth=1,
                                                      limit=3, out=str(user_folder / f"run-{name}")),
                                  backend=ScriptedBackend(lambda request: "Start 7, add 5: 12.\nThe answer is 12."),
                                  progress=False)
        assert summary["n"] == 3 and summary["unparsed_rate"] == 0.0


def generators(namespace: dict) -> list[str]:
    """Functions of a generator's shape, `(count, depth, seed)`: a task file's generator, not a chain."""
    import inspect

    return [name for name, value in namespace.items() if inspect.isfunction(value)
            and list(inspect.signature(value).parameters) == ["count", "depth", "seed"]]


def null_evals():
    """The README's `eval ... --backend null` lines: they need no model, so they run here as written."""
    for line, command in shell_commands():
        words = shlex.split(command)
        if words[3] == "eval" and "--backend null" in command:
            yield pytest.param(command, id=f"README:{line}")


def test_the_readme_shows_a_floor_run():
    assert len(list(null_evals())) >= 2


@pytest.mark.parametrize("command", list(null_evals()))
def test_null_backend_eval_example_runs(command, user_folder, capsys):
    argv = shlex.split(command)[3:]
    assert main(argv + ["--out", str(user_folder / "floor-run")]) == 0, capsys.readouterr().err
    summary = json.loads((user_folder / "floor-run" / "summary.json").read_text())
    assert summary["backend"] == "null" and summary["floor"]["accuracy"] == summary["accuracy"]
    assert "wrote" in capsys.readouterr().out


def test_examples_import_only_the_public_face():
    """The README's Python, the chain files under prompts/ and eval/chains/ import from `engine` alone, so the
    folders below can move without breaking them."""
    import ast

    sources = [(f"README.md:{line}", code) for line, _, code in blocks("python")]
    sources += [(str(path.relative_to(REPO)), path.read_text()) for path in
                sorted(REPO.glob("prompts/**/*.py")) + sorted(REPO.glob("eval/chains/*.py"))]
    assert len(sources) >= 4
    private = []
    for where, code in sources:
        for node in ast.walk(ast.parse(code)):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                     [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            private += [f"{where}: {name}" for name in names if name.startswith("engine.")]
    assert not private, "examples import private modules: " + "; ".join(private)
