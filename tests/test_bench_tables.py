"""The benchmark scripts' bookkeeping: which command made which figure, and the table bench_all prints."""

from __future__ import annotations

import doctest
import importlib.util
import json
from pathlib import Path

EVAL = Path(__file__).resolve().parent.parent / "eval"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, EVAL / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_partial_rerun_keeps_the_commands_behind_the_other_figures():
    chains = load("bench_chains")
    assert doctest.testmod(chains).failed == 0
    kept = chains.merged_commands(["python eval/bench_chains.py --repeat 2 (overhead, batched, startup)"],
                                  ["--only", "startup"], ["startup"])
    assert kept == ["python eval/bench_chains.py --repeat 2 (overhead, batched)",
                    "python eval/bench_chains.py --only startup (startup)"]
    assert chains.merged_commands("python eval/bench_chains.py (overhead)", [], ["overhead", "votes"]) == \
        ["python eval/bench_chains.py (overhead, votes)"]  # an old single-string entry, wholly remeasured


def test_the_table_shows_every_figure_present_with_its_target(tmp_path, monkeypatch):
    bench_all = load("bench_all")
    monkeypatch.setattr(bench_all, "RESULTS", tmp_path)
    figure = {"median": 0.42, "min": 0.4, "max": 0.5, "values": [0.4, 0.42, 0.5]}
    (tmp_path / "chains.json").write_text(json.dumps({
        "overhead": {"engine/raw": figure, "target": "<= 1.05", "met": True},
        "startup": {"in-process/processes first_request_s": figure}}))
    rows = bench_all.rows_from_results("missing.json", "missing.json")
    assert rows == [("engine / raw vllm.LLM.generate, same prompts", "0.42 (0.40-0.50)", "<= 1.05", "True"),
                    ("start-up to the first result, in-process/processes first_request_s", "0.42 (0.40-0.50)", "", "")]
