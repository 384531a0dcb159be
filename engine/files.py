"""Run-folder files that survive a kill: atomic writes, a records file repaired on resume, and a folder lock.

A run is killed at any instant (SIGKILL, a lost machine, Ctrl-C). What it wrote must never be half a file that
a later reader trusts: `write_atomic` writes a temporary file beside the target, fsyncs it and renames it over
the target (rename is atomic on POSIX), so readers see the old file or the new one. `samples.jsonl` is
appended one line per finished item; a kill mid-write leaves a line without its newline, which
`read_records` drops (and `repair_records` cuts from the file before a resumed run appends).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from engine.errors import EngineError


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: a reader never sees a half-written file."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_records(path: Path) -> tuple[list[dict], int]:
    """The complete JSON lines of a records file, and how many bytes they span.

    A last line without its newline is a write cut short by a kill: it is not returned, and the byte count
    stops before it. A complete line that is not JSON is damage nobody should paper over: one-line error.
    """
    path = Path(path)
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    records = []
    for number, line in enumerate(data[:complete].split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise EngineError(f"{path}:{number} is not a valid record (the file was edited or damaged): "
                              "delete that line, or rerun into a new --out folder") from None
    return records, complete


def repair_records(path: Path) -> tuple[list[dict], bool]:
    """Read a records file and cut off a half-written last line so appends start on a fresh line."""
    records, complete = read_records(path)
    cut = complete < path.stat().st_size
    if cut:
        with open(path, "r+b") as stream:
            stream.truncate(complete)
    return records, cut


@contextmanager
def staged_folder(target: Path, marker: str, about: dict):
    """Yield a private folder beside `target` to fill; then it becomes `target` in one rename, `marker` inside.

    A folder with its marker is always complete. If another process published the same folder first, theirs
    stays and this one is dropped; a folder without its marker (an older, interrupted writer) is replaced.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; caches are ordinary folders
    try:
        yield staging
        (staging / marker).write_text(json.dumps(about, indent=2))
        if target.exists() and not (target / marker).exists():
            shutil.rmtree(target)
        try:
            staging.rename(target)
        except OSError:
            if not (target / marker).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def exclusive(lock_file: Path):
    """Hold an exclusive lock on `lock_file` (waiting for it): one process at a time does what this guards."""
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a", encoding="utf-8") as stream:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(stream.fileno(), fcntl.LOCK_UN)


class FolderLock:
    """An exclusive lock on a run folder for as long as one process writes it.

    `flock` locks die with their process, so a killed run never leaves a stale lock behind; a second process
    that wants the same folder is refused at once with a message naming the holder.
    """

    NAME = ".lock"

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._stream = None

    def __enter__(self) -> "FolderLock":
        self.folder.mkdir(parents=True, exist_ok=True)
        stream = open(self.folder / self.NAME, "a+", encoding="utf-8")
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            stream.seek(0)
            holder = stream.read().strip() or "another process"
            stream.close()
            raise EngineError(f"{self.folder} is being written by {holder}: wait for it to finish, "
                              "or pass another --out folder") from None
        stream.seek(0)
        stream.truncate()
        stream.write(f"process {os.getpid()}")
        stream.flush()
        self._stream = stream
        return self

    def __exit__(self, *exc_info) -> None:
        if self._stream is not None:
            fcntl.flock(self._stream.fileno(), fcntl.LOCK_UN)
            self._stream.close()
            self._stream = None
