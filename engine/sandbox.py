"""Run model-written Python (program-aided reasoning, PAL) in an isolated child process.

A model's program is untrusted. `run_program` runs it in a fresh ``python -I -S -B`` subprocess whose working
directory is a new temporary directory (removed afterwards), with a minimal environment, and these layers:

* **resource limits** set by the runner before any user code: address space (``memory_mb``), CPU seconds,
  open files, file size (1 MiB), core dumps off, and no new processes (``RLIMIT_NPROC`` 0; ignored for root);
* **a wall-clock timeout**: the child is a session leader and its whole process group is killed;
* **an audit hook** (`sys.addaudithook`) that refuses network use, starting programs or processes, ctypes,
  signals to other processes, changing limits, and file access outside the sandbox directory (reading
  Python's own standard library is allowed, so ``import fractions`` works); every refusal is reported as a
  one-line error such as ``"blocked: network access"`` even if the program catches the exception;
* **a seccomp filter** (x86-64 and aarch64 Linux, installed through ctypes before the hook) that makes
  fork/clone/exec/socket/ptrace/kill/mount/unshare fail with EPERM, the backstop for anything the audit hook
  misses (audit hooks are not a security boundary by themselves). A side effect: programs cannot start
  threads;
* **a fresh network namespace** via util-linux ``unshare --net`` when that works here (root, or user
  namespaces allowed); checked once per process, skipped silently otherwise.

`isolation_layers()` reports which of these are active on this machine.

The child talks back through one JSON line on its stdout behind a per-run random marker, so nothing a
program prints can be confused with the result.
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
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError

STDOUT_CAP = 10_000
"""At most this many characters of the program's stdout are kept in `ProgramResult.stdout`."""

VALUE_CAP = 10_000
"""At most this many characters of the answer are kept in `ProgramResult.value`."""

MAX_CODE_CHARS = 200_000
"""Longer programs are refused with an EngineError."""

FILE_SIZE_LIMIT = 1 << 20
"""RLIMIT_FSIZE: the largest file a program may write in its sandbox directory."""

OPEN_FILES_LIMIT = 32
"""RLIMIT_NOFILE for the program."""

MIN_MEMORY_MB = 64

_MARKER = b"@@engine-sandbox-result@@"
_HEAD_BYTES = 1 << 20  # keep this much of each stream from its start ...
_TAIL_BYTES = 256 << 10  # ... and this much from its end (where the result line is)
_ERROR_CAP = 300


@dataclass(frozen=True)
class ProgramResult:
    """What running one program gave."""

    ok: bool
    """True when the program finished, produced an answer, and nothing it tried was blocked."""

    value: str | None
    """The answer: str() of what the entry function returned, else the last non-empty line printed."""

    stdout: str
    """What the program printed (capped at STDOUT_CAP characters)."""

    error: str | None
    """One line saying why not ok: "timed out after 5.0 s", "ZeroDivisionError: division by zero", ..."""

    seconds: float
    """Wall-clock time the child took, start-up included."""


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
    """The isolation layers active for a program run on this machine, as reported by a trivial child."""
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


class _Drain(threading.Thread):
    """Reads a pipe to its end, keeping its first _HEAD_BYTES and last _TAIL_BYTES."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def run(self) -> None:
        fd = self.stream.fileno()
        try:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self.total += len(chunk)
                room = _HEAD_BYTES - len(self.head)
                if room > 0:
                    self.head += chunk[:room]
                    chunk = chunk[room:]
                if chunk:
                    self.tail += chunk
                    if len(self.tail) > _TAIL_BYTES:
                        del self.tail[: len(self.tail) - _TAIL_BYTES]
        except OSError:
            pass

    @property
    def gap(self) -> bool:
        return self.total > len(self.head) + len(self.tail)


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


def _run(code: str, timeout_s: float, memory_mb: int, entry: str | None) -> tuple[ProgramResult, list[str] | None]:
    _validate(code, timeout_s, memory_mb, entry)
    timeout_s = float(timeout_s)
    token = secrets.token_hex(16)
    directory = tempfile.mkdtemp(prefix="engine-sandbox-")
    prefix = _unshare_prefix()
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
        "netns": bool(prefix),
    }
    command = [*prefix, sys.executable, "-I", "-S", "-B", "-X", "utf8", "-c", _RUNNER]
    start = time.monotonic()
    timed_out = False
    try:
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=directory, env=_child_env(directory), start_new_session=True, close_fds=True,
            )
        except OSError as exc:
            raise EngineError(f"could not start the sandbox child ({exc}); check that {sys.executable} runs") from exc
        out, err = _Drain(process.stdout), _Drain(process.stderr)
        out.start()
        err.start()
        feeder = threading.Thread(target=_feed, args=(process.stdin, json.dumps(config).encode("utf-8")), daemon=True)
        feeder.start()
        try:
            process.wait(timeout=max(0.0, timeout_s - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process.pid)
            process.kill()
            process.wait()
        seconds = time.monotonic() - start
        _kill_group(process.pid)  # anything the program left behind in its group
        feeder.join(5)
        out.join(5)
        err.join(5)
        for stream in (process.stdout, process.stderr):
            stream.close()
    finally:
        _remove_tree(directory)
    return _interpret(out, err, process.returncode, timed_out, timeout_s, token, seconds)


def _interpret(out: _Drain, err: _Drain, returncode: int, timed_out: bool, timeout_s: float, token: str,
               seconds: float) -> tuple[ProgramResult, list[str] | None]:
    marker = b"\n" + _MARKER + token.encode() + b" "
    payload = None
    before_marker_head, before_marker_tail = bytes(out.head), bytes(out.tail)
    # Without a gap the two buffers are the whole stream: search it joined, in case the line straddles them.
    searches = ("tail", "head") if out.gap else ("whole",)
    for where in searches:
        buffer = bytes(out.tail) if where == "tail" else bytes(out.head) + (b"" if out.gap else bytes(out.tail))
        index = buffer.rfind(marker)
        if index < 0:
            continue
        line = buffer[index + len(marker):].split(b"\n", 1)[0]
        try:
            payload = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = None
        if where == "tail":
            before_marker_tail = buffer[:index]
        else:
            before_marker_head, before_marker_tail = buffer[:index], b""
        break

    head_text = before_marker_head.decode("utf-8", "replace")
    tail_text = before_marker_tail.decode("utf-8", "replace")
    printed = head_text + ("\n[...]\n" if out.gap else "") + tail_text
    stdout = printed if len(printed) <= STDOUT_CAP else printed[:STDOUT_CAP] + "\n[... stdout truncated]"
    last_chunk = tail_text if (out.gap or tail_text.strip()) else head_text
    lines = [line.strip() for line in last_chunk.splitlines() if line.strip()]
    last_line = lines[-1] if lines else None

    error: str | None
    value: str | None = None
    layers: list[str] | None = None
    if timed_out or returncode == -signal.SIGXCPU:
        error = f"timed out after {timeout_s} s"
    elif not isinstance(payload, dict):
        error = _crash_message(returncode, err)
    else:
        layers = payload.get("layers")
        error = payload.get("error")
        value = payload.get("value")
        if value is None:
            value = last_line
        if error is None and value is None:
            error = "printed nothing and returned nothing"
    if value is not None and len(value) > VALUE_CAP:
        value = value[:VALUE_CAP]
    if error is not None:
        error = _one_line(error)
    return ProgramResult(ok=error is None, value=value, stdout=stdout, error=error, seconds=round(seconds, 3)), layers


def _crash_message(returncode: int, err: _Drain) -> str:
    stderr = (bytes(err.head) + bytes(err.tail)).decode("utf-8", "replace")
    if "MemoryError" in stderr:
        return "memory limit exceeded"
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"program was killed by {name}"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if lines:
        return f"program ended without a result (exit code {returncode}): {lines[-1]}"
    return f"program ended without a result (exit code {returncode})"


def _one_line(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= _ERROR_CAP else line[: _ERROR_CAP - 3] + "..."


# The runner is a file of its own, executed by the child as `python -I -S -B -X utf8 -c RUNNER`.
_RUNNER = (Path(__file__).resolve().parent / "sandbox_runner.py").read_text(encoding="utf-8")
