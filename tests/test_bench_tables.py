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


def spread(median: float, low: float, high: float) -> dict:
    return {"median": median, "min": low, "max": high, "values": [low, median, high]}


def test_the_table_shows_every_figure_present_with_its_target(tmp_path, monkeypatch):
    """Every kind of figure bench_all knows, each with its own numbers, so a row left out or mixed up shows."""
    bench_all = load("bench_all")
    monkeypatch.setattr(bench_all, "RESULTS", tmp_path)
    (tmp_path / "chains.json").write_text(json.dumps({
        "overhead": {"engine/raw": spread(0.99, 0.96, 1.01), "target": "<= 1.05", "met": True},
        "batched": {"per_item/batched": spread(3.14, 3.0, 3.3), "target": ">= 2", "met": True},
        "votes": {"k/one": spread(2.71, 2.5, 2.9), "target": "<= 2", "met": False},
        "startup": {"work": [60, 464, 27], "sized/share first_request_s": spread(0.98, 0.97, 0.99),
                    "in-process/processes peak_rss_mb": spread(0.42, 0.4, 0.5)},
        "scaling": {"rows": [{"items": 64}, {"items": 256}, {"items": 1024}], "seconds_per_token_ratio": 0.838,
                    "peak_rss_ratio": 1.6, "met": {"seconds_per_token_ratio": True, "peak_rss_ratio": False}}}))
    (tmp_path / "scheduler.json").write_text(json.dumps({
        "depth": 3, "limit": 64, "continuous/waves": spread(0.55, 0.5, 0.7), "continuous/ceiling": spread(1.3, 1.2, 1.4)}))
    (tmp_path / "lm-eval.json").write_text(json.dumps({"limit": 200, "table": {
        "lm-eval wall s": {**spread(1189.6, 1189.6, 1189.6), "target": None, "met": None},
        "same prompts: wall engine/lm-eval": {**spread(0.813, 0.8, 0.85), "target": "<= 0.8", "met": False},
        "same prompts: identical answers": {**spread(1.0, 1.0, 1.0), "target": ">= 0.99", "met": True}}}))
    rows = bench_all.rows_from_results("scheduler.json", "lm-eval.json")
    assert rows == [
        ("engine / raw vllm.LLM.generate, same prompts", "0.99 (0.96-1.01)", "<= 1.05", "True"),
        ("3-step chain: one item at a time / batched", "3.14 (3.00-3.30)", ">= 2", "True"),
        ("self-consistency k=8 via n / one sample", "2.71 (2.50-2.90)", "<= 2", "False"),
        ("start-up to the first result, sized/share first_request_s", "0.98 (0.97-0.99)", "", ""),
        ("start-up to the first result, in-process/processes peak_rss_mb", "0.42 (0.40-0.50)", "", ""),
        ("scaling 64/256/1024 items: (seconds ratio) / (tokens ratio)", "0.84", "<= 1", "True"),
        ("peak RSS 1024 items / 64 items", "1.60", "<= 1.5", "False"),
        ("continuous/waves (decompose d3, 64 items)", "0.55 (0.50-0.70)", "<= 0.6", "True"),
        ("continuous/ceiling (decompose d3, 64 items)", "1.30 (1.20-1.40)", "<= 1.25", "False"),
        ("lm-eval GSM8K 200 items, same prompts: wall engine/lm-eval", "0.813 (0.800-0.850)", "<= 0.8", "False"),
        ("lm-eval GSM8K 200 items, same prompts: identical answers", "1.000 (1.000-1.000)", ">= 0.99", "True"),
    ]
    (tmp_path / "chains.json").unlink()
    assert bench_all.rows_from_results("missing.json", "missing.json") == []  # no files, no rows


def test_the_bbh_plot_draws_each_run_row_and_leaves_untrained_files_without_a_tuned_bar(tmp_path):
    table = load("bbh_table")
    rows = [{"task": "bbh-navigate", "chance": 0.5, "floor": 0.0, "base_best": 0.288, "base_chain": 0.472,
             "tuned_chain": 0.42, "codex_cot": 0.964},
            {"task": "bbh-word_sorting", "chance": None, "floor": 0.0, "base_best": 0.0, "base_chain": 0.0,
             "tuned_chain": None, "codex_cot": 0.404}]
    drawn = table.plot(rows, str(tmp_path / "bbh.png"))
    assert (tmp_path / "bbh.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert drawn["tuned_chain"] == {"bbh-navigate": 42.0}
    assert drawn["base_chain"] == {"bbh-navigate": 47.2, "bbh-word_sorting": 0.0}
    assert drawn["floor"] == {"bbh-navigate": 0.0, "bbh-word_sorting": 0.0}
    assert table._short("bbh-tracking_shuffled_objects_seven_objects") == "tracking seven"
