"""The crash test: SIGKILL an evaluation at random points, rerun it each time, and lose or double nothing."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine.files import read_records
from engine.runs.step_cache import StepCache
from engine.runs.verify import verify_run

DRIVER = Path(__file__).with_name("crash_driver.py")
KILLS = 6


def start(out: Path, cache: Path, delay: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(DRIVER), str(out), str(cache), str(delay)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def holds_lock(out: Path, pid: int) -> bool:
    lock = out / ".lock"
    return lock.exists() and lock.read_text().strip() == f"process {pid}"


def comparable(records: list[dict]) -> dict:
    """What a run concluded per item, without timings or cache flags."""
    return {r["id"]: (r["answer"], r["correct"], r["error"], [(s["step"], s["outputs"], s["parsed"]) for s in r["steps"]])
            for r in records}


def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path):
    reference = tmp_path / "reference"
    done = subprocess.run([sys.executable, str(DRIVER), str(reference), str(tmp_path / "ref.sqlite")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    expected, _ = read_records(reference / "samples.jsonl")
    assert len(expected) == 40 and 0 < sum(r["correct"] for r in expected) < 40  # right and wrong answers to keep

    out, cache = tmp_path / "killed", tmp_path / "steps.sqlite"
    rng = random.Random(1234)
    kills, lines_seen = 0, []
    for _attempt in range(40):
        process = start(out, cache, delay=0.6)
        deadline = time.monotonic() + 120
        while not holds_lock(out, process.pid) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.1, 1.0))
        if process.poll() is not None:  # finished before the kill landed
            break
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        if (out / "summary.json").exists():  # killed after the run had finished its work
            break
        kills += 1
        cached = StepCache(cache)
        assert cached.integrity() == "ok"
        cached.close()
        if (out / "samples.jsonl").exists():
            records, _ = read_records(out / "samples.jsonl")
            ids = [r["id"] for r in records]
            assert len(ids) == len(set(ids)), "an item was written twice"
            lines_seen.append(len(ids))
        if kills >= KILLS and lines_seen and lines_seen[-1] >= 10:
            break
    assert kills >= 5, f"only {kills} kills landed mid-run"
    if not (out / "summary.json").exists():
        process = start(out, cache, delay=0.0)
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr[-2000:]

    final, complete = read_records(out / "samples.jsonl")
    assert complete == (out / "samples.jsonl").stat().st_size
    assert sorted(r["id"] for r in final) == sorted(r["id"] for r in expected)  # every item exactly once
    assert comparable(final) == comparable(expected)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"] == json.loads((reference / "summary.json").read_text())["accuracy"]
    assert lines_seen and summary["resumed_items"] == lines_seen[-1]  # what the last killed run had finished
    assert summary["step_cache"]["hits"] > 0  # the last rerun was answered from what killed runs generated
    problems, checked = verify_run(out)
    assert problems == [] and checked == 40
    print(f"kills survived: {kills}; items recorded at each kill: {lines_seen}")
