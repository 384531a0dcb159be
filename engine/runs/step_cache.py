"""A durable step-level cache: every model step's result, keyed by what determines it, in one SQLite file.

A key is the hash of the model's identity (its folder and a hash of every file in it, so new weights or a
new chat template never hit old entries; plus the dtype, since bf16 text differs from fp32 text), the
request's own key (the exact prompt or chat messages, any continuation, and every sampling setting: max
tokens, stop strings, temperature, top-p, n and seed; no backend-specific setting) and nothing else. So:

* rerunning a killed run regenerates only what was not finished;
* editing step 3's template changes step 3's prompts, hence their keys: step 3 onward reruns, steps 1-2 hit;
* the same request on `hf` and on `vllm` (both fp32) shares one entry;
* sampled requests are cached only with a seed, and the seed (offset per sample index by the chain) is part
  of the key, so two sample indices never share one cached sample. Unseeded samples are not repeatable,
  so they are never cached.

SQLite in WAL mode commits each wave's results in one transaction; a kill loses at most the wave that was
being generated, never the file (the crash test checks `PRAGMA integrity_check` after every kill).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

from engine.generation import Completion, GenerationRequest, GenerationResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS steps (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    result TEXT NOT NULL,
    created REAL NOT NULL,
    used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
"""


def default_cache_path() -> Path:
    """`ENGINE_STEP_CACHE` if set, else `steps.sqlite` in the engine's cache folder."""
    from engine.models import cache_dir

    return Path(os.environ.get("ENGINE_STEP_CACHE") or cache_dir() / "steps.sqlite")


class StepCache:
    """The SQLite file: results by key, and file hashes by (path, size, mtime) so weights are hashed once."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # SQLite's limit on bound parameters
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self.db.execute(f"SELECT key, result FROM steps WHERE key IN ({marks})", chunk):
                found[key] = json.loads(blob)
        if found:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany("UPDATE steps SET used = ? WHERE key = ?", [(time.time(), k) for k in found])
        return found

    def put_many(self, rows: list[tuple[str, str, dict]]) -> None:
        """Store (key, model identity, result) rows in one transaction."""
        now = time.time()
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT OR REPLACE INTO steps (key, model, result, created, used) VALUES (?, ?, ?, ?, ?)",
                [(key, model, json.dumps(result, ensure_ascii=False), now, now) for key, model, result in rows],
            )

    def file_sha256(self, path: Path) -> str:
        """A file's sha256, recomputed only when its size or modification time changed."""
        status = path.stat()
        row = self.db.execute("SELECT size, mtime_ns, sha256 FROM file_hashes WHERE path = ?", (str(path),)).fetchone()
        if row and row[0] == status.st_size and row[1] == status.st_mtime_ns:
            return row[2]
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 22), b""):
                digest.update(block)
        value = digest.hexdigest()
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)",
                            (str(path), status.st_size, status.st_mtime_ns, value))
        return value

    def stats(self) -> dict:
        entries, size = self.db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(result)), 0) FROM steps").fetchone()
        models = dict(self.db.execute("SELECT model, COUNT(*) FROM steps GROUP BY model ORDER BY 2 DESC"))
        oldest = self.db.execute("SELECT MIN(used) FROM steps").fetchone()[0]
        return {"path": str(self.path), "entries": entries, "result_bytes": size,
                "file_bytes": self.path.stat().st_size, "models": models,
                "least_recently_used": oldest}

    def prune(self, unused_days: float | None = None, model: str | None = None) -> int:
        """Delete entries unused for `unused_days`, or of models whose identity contains `model`, or all."""
        clauses, values = [], []
        if unused_days is not None:
            clauses.append("used < ?")
            values.append(time.time() - unused_days * 86400)
        if model is not None:
            clauses.append("instr(model, ?) > 0")
            values.append(model)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.db:
            removed = self.db.execute(f"DELETE FROM steps{where}", values).rowcount
        self.db.execute("VACUUM")
        return removed

    def integrity(self) -> str:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        self.db.close()


def model_identity(backend, cache: StepCache) -> str | None:
    """Folder, content hash and dtype of the backend's model; None where it has no stable identity.

    A backend may declare its own (`identity`, e.g. a test double); a model held only in memory (one being
    fine-tuned) has none and is never cached.
    """
    if getattr(backend, "remote", False):  # a server's weights are not ours to hash, and may change under its name
        return None
    if getattr(backend, "cacheable", True) is False:  # the null backend: no model, nothing worth storing
        return None
    declared = getattr(backend, "identity", None)
    if declared is not None:
        return declared
    folder = Path(str(getattr(backend, "model", "")))
    dtype = getattr(backend, "dtype", None)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(f"{path.relative_to(folder)}\0{cache.file_sha256(path)}\n".encode())
    return f"{folder.resolve()}|{digest.hexdigest()[:16]}|{dtype}"


def cacheable(request: GenerationRequest) -> bool:
    """Greedy requests, and sampled ones with a seed; an unseeded sample is not meant to repeat."""
    return request.sampling.greedy or request.sampling.seed is not None


def entry_key(identity: str, request: GenerationRequest) -> str:
    return hashlib.sha256(f"{identity}\0{request.key}".encode()).hexdigest()


def _as_entry(result: GenerationResult) -> dict:
    return {"prompt_text": result.prompt_text, "prompt_tokens": result.prompt_tokens, "seconds": result.seconds,
            "cached_prompt_tokens": result.cached_prompt_tokens, "completions": [vars(c) for c in result.completions]}


def _from_entry(request: GenerationRequest, entry: dict) -> GenerationResult:
    return GenerationResult(request.key, entry["prompt_text"], entry["prompt_tokens"],
                            tuple(Completion(**c) for c in entry["completions"]), entry["seconds"],
                            cached_prompt_tokens=entry.get("cached_prompt_tokens", 0), cached=True)


class CachedBackend:
    """A backend that answers from the step cache what it can and sends only the rest to the real one.

    Everything else (name, tokenizer, close, dtype) is the wrapped backend's, so callers cannot tell the
    difference except for `hits` and `misses`.
    """

    def __init__(self, backend, cache: StepCache, identity: str):
        self.inner, self.cache, self.identity = backend, cache, identity
        self.hits = self.misses = 0
        self._ready: list[tuple] = []  # continuous scheduling: answers found in the cache, for the next poll
        self._waiting: dict[str, list] = {}  # key in flight -> [(tag, request), ...] waiting for it
        if hasattr(backend, "submit"):  # offer continuous scheduling only where the real backend has it
            self.submit, self.poll, self.busy = self._submit, self._poll, self._busy

    def __getattr__(self, name):
        if name in ("submit", "poll", "busy"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _submit(self, request: GenerationRequest, tag) -> None:
        if not cacheable(request):
            self.misses += 1
            self.inner.submit(request, (None, tag))
            return
        key = entry_key(self.identity, request)
        if key in self._waiting:  # the same request is being generated: share its result
            self._waiting[key].append((tag, request))
            return
        entry = self.cache.get_many([key]).get(key)
        if entry is not None:
            self.hits += 1
            self._ready.append((tag, _from_entry(request, entry)))
            return
        self.misses += 1
        self._waiting[key] = [(tag, request)]
        self.inner.submit(request, (key, tag))

    def _poll(self) -> list[tuple]:
        done, self._ready = self._ready, []
        rows = []
        for (key, tag), result in self.inner.poll():
            if key is None:
                done.append((tag, result))
                continue
            waiters = self._waiting.pop(key)
            if result.error is None:
                rows.append((key, self.identity, _as_entry(result)))
            done.append((tag, result))
            for other_tag, other in waiters[1:]:
                self.hits += 1
                done.append((other_tag, result if result.error else _from_entry(other, _as_entry(result))))
        if rows:
            self.cache.put_many(rows)
        return done

    def _busy(self) -> bool:
        return bool(self._ready) or self.inner.busy()

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        keys = [entry_key(self.identity, r) if cacheable(r) else None for r in requests]
        found = self.cache.get_many([k for k in keys if k])
        todo: list[int] = []
        first_of: dict[str, int] = {}
        for index, key in enumerate(keys):
            if key is None:
                todo.append(index)
            elif key not in found and key not in first_of:  # one generation for identical requests in a wave
                first_of[key] = index
                todo.append(index)
        fresh = dict(zip(todo, self.inner.generate([requests[i] for i in todo]))) if todo else {}
        rows = [(keys[i], self.identity, _as_entry(fresh[i])) for i in todo
                if keys[i] is not None and fresh[i].error is None]
        if rows:
            self.cache.put_many(rows)
        results = []
        for index, (request, key) in enumerate(zip(requests, keys)):
            if index in fresh:
                results.append(fresh[index])
                self.misses += 1
            elif key in found:
                results.append(_from_entry(request, found[key]))
                self.hits += 1
            else:  # the same request earlier in this wave
                twin = fresh[first_of[key]]
                results.append(twin if twin.error else _from_entry(request, _as_entry(twin)))
                self.hits += 1
        return results
