"""Run model-written Python (program-aided reasoning, PAL) in an isolated child process.

A model's program is untrusted. `run_program` runs it in a fresh ``python -I -S -B`` subprocess whose working
directory is a new temporary directory (removed afterwards), with a minimal environment, and these layers,
outermost first (`isolation_layers()` names the ones active on this machine):

* **bubblewrap** (`engine.sandbox.box`), the boundary: the child sees only the interpreter's files (read-only),
  its own directory, a fresh ``/proc`` and an empty ``/tmp``; no network, no other process, no capabilities,
  and it dies with its parent. Where bwrap cannot run (or ``ENGINE_SANDBOX_NO_BWRAP=1``) the engine logs one
  warning line per process naming the layers it has instead;
* **a fresh network namespace**: bubblewrap's, or util-linux ``unshare --net`` without it (checked once);
* **a wall-clock timeout**: the child is a session leader and its whole process group is killed, also when
  the caller is interrupted (Ctrl-C) while the program runs;
* **resource limits** set by the runner before any user code: address space (``memory_mb``), CPU seconds,
  open files, file size (1 MiB), core dumps off, and no new processes (``RLIMIT_NPROC`` 0);
* **no capabilities and a seccomp filter** (x86-64 and aarch64 Linux): fork/clone/exec/socket/ptrace/kill/
  pidfd/mount/unshare fail with EPERM (so programs cannot start threads either), and even root cannot raise
  its limits again;
* **an audit hook** (`engine.sandbox.hook`) that refuses network use, starting programs, ctypes and native
  modules, signals, changing limits, interpreter introspection that could reach the hook, and file access
  outside the sandbox directory (reading the standard library is allowed, so ``import fractions`` works).
  Every refusal becomes a one-line error such as ``"blocked: network access"`` even if the program catches
  the exception. Audit hooks are not a boundary, which is why the layers above exist.

The child talks back through one JSON line on its stdout behind a per-run random token
(`engine.sandbox.output`), so nothing a program prints can be confused with the result.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from engine.sandbox import box as sandbox_box
from engine.errors import EngineError
from engine.sandbox.output import STDOUT_CAP, VALUE_CAP, Drain, ProgramResult, interpret

__all__ = ["STDOUT_CAP", "VALUE_CAP", "ProgramResult", "extract_code", "isolation_layers", "run_program"]

MAX_CODE_CHARS = 200_000
"""Longer programs are refused with an EngineError."""

FILE_SIZE_LIMIT = 1 << 20
"""RLIMIT_FSIZE: the largest file a program may write in its sandbox directory."""

OPEN_FILES_LIMIT = 32
"""RLIMIT_NOFILE for the program."""

MIN_MEMORY_MB = 64


def run_program(
    code: str, timeout_s: float = 5.0, memory_mb: int = 256, entry: str | None = "solution"
) -> ProgramResult:
    """Run untrusted Python `code` in an isolated subprocess and return what it answered.

    If the program defines a callable named `entry`, it is called with no arguments after the program ran and
    str() of its return value is the answer; when it is not defined or returns None, the last non-empty line
    the program printed is. Errors for the program itself (exceptions, timeouts, blocked actions) come back in
    `ProgramResult.error`; only bad arguments raise `EngineError`.
    """
    result, _ = _run(code, timeout_s, memory_mb, entry)
    return result


def isolation_layers() -> list[str]:
    """The isolation layers active for a program run on this machine, as reported by a trivial child.

    Names, outermost first: subprocess, tempdir, env, bubblewrap, netns, rlimits, no-capabilities, seccomp,
    nproc, audit-hook. A run's summary records them, so results from a weaker sandbox can be told apart.
    """
    result, layers = _run("pass", 10.0, 256, None)
    if layers is None:
        raise EngineError(f"the sandbox could not start a child Python here ({result.error}); check {sys.executable}")
    return layers


def extract_code(text: str) -> str | None:
    """Python code from a model's answer, or None if it contains none.

    The last fenced block marked ``python``/``py``/``python3`` or unmarked (```` ``` ````) wins; a block whose
    closing fence is missing (a truncated answer) runs to the end of the text. Without fences, text that
    contains ``def solution`` is taken from that line on, together with any import lines right above it.
    """
    if not isinstance(text, str):
        raise EngineError(f"extract_code() needs the model's answer as a str, got {type(text).__name__}")
    blocks = [
        match.group(2)
        for match in _FENCE_RE.finditer(text)
        if match.group(1).lower() in ("", "python", "py", "python3")
    ]
    if blocks:
        code = _tidy(blocks[-1])
        return code or None
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"\s*def solution\b", line):
            start = index
            while start > 0 and re.match(r"\s*(import\s|from\s\S+\s+import\s)", lines[start - 1]):
                start -= 1
            return _tidy("\n".join(lines[start:])) or None
    return None


_FENCE_RE = re.compile(
    r"^[ \t]*```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.DOTALL | re.MULTILINE
)


def _tidy(code: str) -> str:
    code = textwrap.dedent(code.replace("\r\n", "\n"))
    return code.strip("\n").rstrip() + "\n" if code.strip() else ""


# --- running ----------------------------------------------------------------------------------------------


def _validate(code: object, timeout_s: object, memory_mb: object, entry: object) -> None:
    if not isinstance(code, str):
        raise EngineError(f"run_program() needs the program as a str, got {type(code).__name__}; pass the code text")
    if len(code) > MAX_CODE_CHARS:
        raise EngineError(f"program is {len(code)} characters, over the {MAX_CODE_CHARS} limit; pass a shorter program")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not (0 < timeout_s <= 3600):
        raise EngineError(
            f"timeout_s must be a number of seconds in (0, 3600], got {timeout_s!r}; pass e.g. timeout_s=5.0"
        )
    if isinstance(memory_mb, bool) or not isinstance(memory_mb, int) or memory_mb < MIN_MEMORY_MB:
        raise EngineError(
            f"memory_mb must be an int of at least {MIN_MEMORY_MB}, got {memory_mb!r}; pass e.g. memory_mb=256"
        )
    if entry is not None and (not isinstance(entry, str) or not entry.isidentifier()):
        raise EngineError(f"entry must be a Python function name such as 'solution', or None, got {entry!r}")


_unshare_lock = threading.Lock()
_unshare_cache: list[str | None] = []


def _unshare_prefix() -> list[str]:
    """``[unshare, --net, --]`` when a fresh network namespace can be made here, else []. Checked once."""
    with _unshare_lock:
        if not _unshare_cache:
            path = shutil.which("unshare")
            works = False
            if path and sys.platform.startswith("linux"):
                try:
                    probe = subprocess.run(
                        [path, "--net", "--", sys.executable, "-I", "-S", "-c", "pass"],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        timeout=10, env=_child_env(tempfile.gettempdir()),
                    )
                    works = probe.returncode == 0
                except (OSError, subprocess.SubprocessError):
                    works = False
            _unshare_cache.append(path if works else None)
        path = _unshare_cache[0]
    return [path, "--net", "--"] if path else []


def _child_env(directory: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": directory,
        "TMPDIR": directory,
    }


def _feed(stream, data: bytes) -> None:
    try:
        stream.write(data)
    except OSError:
        pass  # the child died before reading; its exit status tells why
    finally:
        try:
            stream.close()
        except OSError:
            pass


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _remove_tree(path: str) -> None:
    def retry(function, target, _exc_info) -> None:
        try:
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            function(target)
        except OSError:
            pass

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry)
    else:
        shutil.rmtree(path, onerror=retry)


def _run(code: str, timeout_s: float, memory_mb: int, entry: str | None,
         disable: tuple[str, ...] = ()) -> tuple[ProgramResult, list[str] | None]:
    """Run one program. `disable` ("audit-hook", "seccomp") is for the tests that check each layer alone."""
    _validate(code, timeout_s, memory_mb, entry)
    timeout_s = float(timeout_s)
    token = secrets.token_hex(16)
    directory = tempfile.mkdtemp(prefix="engine-sandbox-")
    box = sandbox_box.box_command(directory)
    prefix = box if box is not None else _unshare_prefix()
    python = sandbox_box.interpreter() if box is not None else sys.executable
    config = {
        "code": code,
        "entry": entry,
        "token": token,
        "root": directory,
        "memory_bytes": memory_mb << 20,
        "cpu_seconds": math.ceil(timeout_s) + 1,
        "fsize": FILE_SIZE_LIMIT,
        "nofile": OPEN_FILES_LIMIT,
        "value_cap": VALUE_CAP,
        "bwrap": box is not None,
        "netns": bool(prefix),
        "disable": list(disable),
    }
    command = [*prefix, python, "-I", "-S", "-B", "-X", "utf8", "-c", _RUNNER]
    start = time.monotonic()
    timed_out = False
    try:
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=directory, env=_child_env(directory), start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            raise EngineError(f"could not start the sandbox child ({exc}); check that {python} runs") from exc
        try:
            out, err = Drain(process.stdout), Drain(process.stderr)
            out.start()
            err.start()
            feeder = threading.Thread(target=_feed, args=(process.stdin, json.dumps(config).encode("utf-8")),
                                      daemon=True)
            feeder.start()
            try:
                process.wait(timeout=max(0.0, timeout_s - (time.monotonic() - start)))
            except subprocess.TimeoutExpired:
                timed_out = True
        finally:
            # Also on KeyboardInterrupt: nothing the program started may outlive this call.
            _kill_group(process.pid)
            process.kill()
            process.wait()
        seconds = time.monotonic() - start
        feeder.join(5)
        out.join(5)
        err.join(5)
        for stream in (process.stdout, process.stderr):
            stream.close()
    finally:
        _remove_tree(directory)
    result, layers = interpret(out, err, process.returncode, timed_out, timeout_s, token, seconds)
    if layers is not None:
        sandbox_box.warn_once(layers)
    return result, layers


# The child's code is two files of their own, executed as `python -I -S -B -X utf8 -c RUNNER`.
_HERE = Path(__file__).resolve().parent
_RUNNER = "\n\n".join((_HERE / name).read_text(encoding="utf-8") for name in ("hook.py", "runner.py"))
