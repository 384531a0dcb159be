"""Reading what the sandbox child wrote: its two pipes, kept head and tail, and the marked result line.

The child (`engine.sandbox.runner`) ends with one line ``\\n@@engine-sandbox-result@@<token> <json>`` on its
stdout. The token is random per run and only the child's audit hook holds it, so nothing a program prints can
pass for the result; should a line carrying it appear twice anyway, the run is reported as forged.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from dataclasses import dataclass

STDOUT_CAP = 10_000
"""At most this many characters of the program's stdout are kept in `ProgramResult.stdout`."""

VALUE_CAP = 10_000
"""At most this many characters of the answer are kept in `ProgramResult.value`."""

MARKER = b"@@engine-sandbox-result@@"
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


class Drain(threading.Thread):
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


def interpret(out: Drain, err: Drain, returncode: int, timed_out: bool, timeout_s: float, token: str,
               seconds: float) -> tuple[ProgramResult, list[str] | None]:
    marker = b"\n" + MARKER + token.encode() + b" "
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

    # The runner writes the token once; more copies mean the program found it and printed its own line.
    tagged = MARKER + token.encode()
    copies = bytes(out.head).count(tagged) + bytes(out.tail).count(tagged)
    if not out.gap:
        copies = (bytes(out.head) + bytes(out.tail)).count(tagged)

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
    elif copies > 1:
        error = "program printed a forged sandbox result line"
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


def _crash_message(returncode: int, err: Drain) -> str:
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


