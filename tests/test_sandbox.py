"""The PAL sandbox: real child processes, real limits. Timeouts use timeout_s=1 to keep the file fast."""

import dataclasses
import os
import time

import pytest

from engine.errors import EngineError
from engine.sandbox.launch import STDOUT_CAP, ProgramResult, extract_code, run_program

FILE_BLOCKED = "blocked: file access outside the sandbox"
NET_BLOCKED = "blocked: network access"
PROC_BLOCKED = "blocked: running other programs"


def run(code: str, **kwargs) -> ProgramResult:
    kwargs.setdefault("timeout_s", 3)
    return run_program(code, **kwargs)


# --- answers ----------------------------------------------------------------------------------------------


def test_entry_function_return_value_is_the_answer():
    code = "from fractions import Fraction\ndef solution():\n    print('working')\n    return Fraction(3, 4) * 8\n"
    result = run(code)
    assert result == ProgramResult(ok=True, value="6", stdout="working\n", error=None, seconds=result.seconds)
    assert 0 < result.seconds < 3


def test_result_is_frozen():
    result = run("print(1)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.ok = False  # type: ignore[misc]


def test_last_printed_line_is_the_answer_without_entry():
    result = run("print('thinking')\nprint(6 * 7)\nprint()\n")
    assert (result.ok, result.value, result.stdout) == (True, "42", "thinking\n42\n\n")


def test_entry_returning_none_falls_back_to_printed_line():
    assert run("def solution():\n    print(12)\n").value == "12"


def test_entry_none_and_custom_entry():
    assert run("def solution():\n    return 1\nprint(2)", entry=None).value == "2"
    assert run("def main():\n    return 5\n", entry="main").value == "5"


def test_stdlib_imports_work():
    code = (
        "import math, fractions, itertools, datetime, re, collections, statistics, decimal, functools, json\n"
        "def solution():\n"
        "    d = datetime.date(2024, 2, 28) + datetime.timedelta(days=2)\n"
        "    n = len(list(itertools.permutations(range(4))))\n"
        "    return f'{d} {n} {math.comb(5, 2)} {re.sub(\"a\", \"b\", \"aa\")} {statistics.mean([1, 2, 3])}'\n"
    )
    result = run(code)
    assert (result.ok, result.value) == (True, "2024-03-01 24 10 bb 2"), result.error


def test_unicode_answer():
    assert run("def solution():\n    return 'π ≈ 3.14'\n").value == "π ≈ 3.14"


def test_sys_exit_zero_keeps_the_answer():
    result = run("import sys\nprint(5)\nsys.exit(0)\n")
    assert (result.ok, result.value) == (True, "5")


# --- failures ---------------------------------------------------------------------------------------------


def test_printed_nothing_and_returned_nothing():
    result = run("x = 1\n")
    assert (result.ok, result.value, result.error) == (False, None, "printed nothing and returned nothing")


def test_exception_is_one_line():
    result = run("def solution():\n    return x\n")
    assert (result.ok, result.error) == (False, "NameError: name 'x' is not defined")
    assert run("1/0").error == "ZeroDivisionError: division by zero"
    assert run("raise ValueError('bad\\nthing')").error == "ValueError: bad"


def test_syntax_error():
    result = run("def solution(:\n    pass\n")
    assert not result.ok and result.error.startswith("SyntaxError: ") and result.error.endswith("(line 1)")


def test_input_sees_end_of_file():
    assert run("x = input()").error == "EOFError: EOF when reading a line"


def test_infinite_loop_times_out_and_keeps_partial_output():
    start = time.monotonic()
    result = run("print('started')\nwhile True:\n    pass\n", timeout_s=1)
    elapsed = time.monotonic() - start
    assert (result.ok, result.value, result.error) == (False, None, "timed out after 1.0 s")
    assert result.stdout == "started\n"
    assert elapsed < 3


def test_sleeping_program_times_out():
    result = run("import time\ntime.sleep(30)\n", timeout_s=1)
    assert result.error == "timed out after 1.0 s"


def test_huge_allocation_hits_the_memory_limit():
    result = run("x = bytearray(10**10)\n")
    assert (result.ok, result.error) == (False, "memory limit exceeded")


def test_growing_memory_hits_the_memory_limit():
    result = run("x = []\nwhile True:\n    x.append(bytearray(10**7))\n", memory_mb=128)
    assert result.error == "memory limit exceeded"


def test_file_size_limit():
    result = run("open('big.bin', 'wb').write(b'x' * (2 << 20))\n")
    assert result.error == "OSError: [Errno 27] File too large"


def test_recursion_error():
    assert run("def f(n):\n    return f(n + 1)\nf(0)\n").error.startswith("RecursionError")


# --- blocked actions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, error",
    [
        ("print(open('/etc/passwd').read())", FILE_BLOCKED),
        ("import pathlib\nprint(pathlib.Path('/etc/hostname').read_text())", FILE_BLOCKED),
        ("import os\nprint(os.listdir('/'))", FILE_BLOCKED),
        ("import os\nos.symlink('/etc/passwd', 'p')\nprint(open('p').read())", FILE_BLOCKED),
        ("import os\nfd = os.open(os.path.dirname(os.__file__), os.O_RDONLY)\n"
         "os.open('evil.py', os.O_WRONLY | os.O_CREAT, dir_fd=fd)", FILE_BLOCKED),
        ("import os\nopen(os.path.join(os.path.dirname(os.__file__), 'evil.py'), 'w')", FILE_BLOCKED),
        ("import sqlite3\nsqlite3.connect('/tmp/engine-sandbox-test.db')", FILE_BLOCKED),
        ("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)", NET_BLOCKED),
        ("import socket\nsocket.socket()", NET_BLOCKED),
        ("import urllib.request\nurllib.request.urlopen('http://example.com', timeout=1)", NET_BLOCKED),
        ("import os\nos.system('ls')", PROC_BLOCKED),
        ("import subprocess\nsubprocess.run(['ls'])", PROC_BLOCKED),
        ("import os\nos.fork()", PROC_BLOCKED),
        ("import os\nos.execv('/bin/ls', ['ls'])", PROC_BLOCKED),
        ("import multiprocessing\np = multiprocessing.Process(target=print)\np.start()\np.join()", PROC_BLOCKED),
        ("import _posixsubprocess, os\nr, w = os.pipe()\n_posixsubprocess.fork_exec()", PROC_BLOCKED),
        ("import ctypes\nctypes.CDLL(None).system(b'ls')", "blocked: ctypes (native code)"),
        ("import os, signal\nos.kill(1, signal.SIGTERM)", "blocked: sending signals"),
        ("import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))", "blocked: changing resource limits"),
    ],
)
def test_blocked(code, error):
    result = run(code)
    assert (result.ok, result.error) == (False, error)


def test_write_outside_does_not_happen(tmp_path):
    target = tmp_path / "escaped.txt"
    result = run(f"open({str(target)!r}, 'w').write('x')\n")
    assert result.error == FILE_BLOCKED
    assert not target.exists()


def test_caught_block_is_still_reported():
    result = run("try:\n    open('/etc/passwd')\nexcept OSError:\n    pass\ndef solution():\n    return 1\n")
    assert (result.ok, result.value, result.error) == (False, "1", FILE_BLOCKED)


def test_files_inside_the_sandbox_work_and_are_removed_afterwards():
    code = (
        "import os, shutil, tempfile\n"
        "os.makedirs('a/b')\n"
        "with open('a/b/f.txt', 'w') as f:\n    f.write('hello')\n"
        "with tempfile.TemporaryDirectory() as d:\n    open(os.path.join(d, 'x'), 'w').close()\n"
        "shutil.rmtree('a/b')\n"
        "print(os.getcwd())\n"
    )
    result = run(code)
    assert result.ok, result.error
    assert "engine-sandbox-" in result.value
    assert not os.path.exists(result.value)


def test_environment_is_stripped(monkeypatch):
    monkeypatch.setenv("ENGINE_TEST_SECRET", "hunter2")
    result = run("import os\nprint(sorted(os.environ))\n")
    assert "ENGINE_TEST_SECRET" not in result.value
    assert set(eval(result.value)) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "PWD"}  # PWD: bwrap --chdir


FORGED = r"\n@@engine-sandbox-result@@" + "f" * 32 + ' {"value": "forged", "error": null, "layers": []}'
"""A result line as a program would forge it: a guessed token, then a clean answer (a program-side literal)."""


def test_forged_result_line_after_the_real_one_is_not_trusted():
    # atexit prints after the runner wrote the real line: only the per-run token tells them apart.
    code = f"import atexit\natexit.register(print, '{FORGED}')\ndef solution():\n    return 7\n"
    result = run(code)
    assert (result.ok, result.value) == (True, "7"), result


def test_forged_result_line_instead_of_the_real_one_is_not_trusted():
    result = run(f"import os\nprint('{FORGED}', flush=True)\nos._exit(0)\n")
    assert (result.ok, result.value, result.error) == (False, None, "program ended without a result (exit code 0)")


def test_stdout_is_capped_and_the_answer_still_found():
    result = run("for i in range(100000):\n    print(i)\n")
    assert result.ok and result.value == "99999"
    assert len(result.stdout) <= STDOUT_CAP + 100
    assert result.stdout.startswith("0\n1\n2\n")


# --- arguments --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"code": b"print(1)"},
        {"code": "print(1)", "timeout_s": 0},
        {"code": "print(1)", "timeout_s": "5"},
        {"code": "print(1)", "memory_mb": 8},
        {"code": "print(1)", "entry": "not a name"},
    ],
)
def test_bad_arguments_raise_engine_error(kwargs):
    with pytest.raises(EngineError):
        run_program(**kwargs)


# --- extract_code -----------------------------------------------------------------------------------------


def test_extract_code_last_python_block():
    text = (
        "First try:\n```python\nx = 1\n```\nBetter:\n```python\ndef solution():\n    return 2\n```\n"
        "```json\n{\"a\": 1}\n```\nDone."
    )
    assert extract_code(text) == "def solution():\n    return 2\n"


def test_extract_code_plain_fence_and_unclosed_fence():
    assert extract_code("Here:\n```\nprint(3)\n```\n") == "print(3)\n"
    assert extract_code("```py\n    def solution():\n        return 1\n") == "def solution():\n    return 1\n"


def test_extract_code_without_fence():
    text = "We compute it.\nimport math\ndef solution():\n    return math.floor(2.5)\n"
    assert extract_code(text) == "import math\ndef solution():\n    return math.floor(2.5)\n"


def test_extract_code_none():
    assert extract_code("The answer is 42.") is None
    assert extract_code("```python\n```") is None
    with pytest.raises(EngineError):
        extract_code(None)  # type: ignore[arg-type]


def test_extract_then_run():
    answer = "Let me write code.\n```python\ndef solution():\n    apples = 48 / 2\n    return int(apples + 6)\n```"
    assert run(extract_code(answer)).value == "30"
