"""The demo's wiring: the arithmetic part and the BBH part, which engines start, what the report and demo.json say.

The models are scripted here (the real demo is CI's main job, on the real models); what is checked is that
both models meet the same items of every BBH file, each base run carries its floor, every row says what the
adapter was trained for, and the explorer shows the BBH runs beside the arithmetic ones.
"""

from __future__ import annotations

import json

import pytest

from engine.backends import ScriptedBackend
from engine.cli.main import main
from engine.tasks.bbh import ALGORITHMIC_FILES
from conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "bbh").is_dir(), reason="needs ../shared/data/bbh")


@pytest.fixture
def engines(monkeypatch):
    """Record each engine the demo starts; the base model writes nothing, every adapter answers "True"."""
    import engine.backends

    started, real = [], engine.backends.load_backend

    def load_backend(name, model=None, progress=None, dtype=None, kv_work=None, **options):
        if name == "null":  # each run's floor: the real null backend
            return real(name, model, progress=progress, dtype=dtype, kv_work=kv_work, **options)
        started.append(model)
        kv_work()  # the demo sizes each engine from its plans: they must be there
        return ScriptedBackend(lambda request: "" if model is None else "The answer is True.")

    monkeypatch.setattr("engine.backends.load_backend", load_backend)
    return started


def demo_argv(out, *more):
    return ["demo", "--backend", "hf", "--depths", "1", "--limit", "1", "--strategies", "direct", "--out", str(out),
            *more]


def test_the_bbh_part_pairs_both_models_on_the_same_items_of_every_file(tmp_path, engines, capsys):
    out = tmp_path / "demo"
    assert main(demo_argv(out, "--bbh-items", "2")) == 0
    # the base model's arithmetic and BBH runs share one engine; each adapter has its own
    assert engines == [None, "smollm2-135m-stepwise", "smollm2-135m-bbh"]
    bbh = json.loads((out / "demo.json").read_text())["bbh"]
    assert [row["task"] for row in bbh["rows"]] == list(ALGORITHMIC_FILES)
    trained = {row["task"]: row["trained"] for row in bbh["rows"]}
    assert {task for task, mark in trained.items() if mark == "yes"} == {
        "bbh-multistep_arithmetic_two", "bbh-boolean_expressions", "bbh-navigate",
        "bbh-tracking_shuffled_objects_three_objects"}  # what the shipped adapter's engine-adapter.json names
    assert {task for task, mark in trained.items() if mark == "family"} == {
        "bbh-tracking_shuffled_objects_five_objects", "bbh-tracking_shuffled_objects_seven_objects"}
    for row in bbh["rows"]:
        assert row["n"] == row["paired_n"] == 2
        assert row["floor"] == row["base_chain"] == 0.0  # a model that writes nothing is the floor itself
        base = json.loads((out / row["base_run"] / "summary.json").read_text())
        tuned = json.loads((out / row["tuned_run"] / "summary.json").read_text())
        assert base["floor"]["folder"] and tuned["floor"] is None  # one floor a file: the chain's, the same code
        assert [r["id"] for r in map(json.loads, (out / row["base_run"] / "samples.jsonl").open())] == \
            [r["id"] for r in map(json.loads, (out / row["tuned_run"] / "samples.jsonl").open())]
    assert bbh["pooled"]["n"] == 2 * len(ALGORITHMIC_FILES)
    # "True" is right on some boolean_expressions items, so the adapter's row there is the items' own verdicts
    boolean = next(row for row in bbh["rows"] if row["task"] == "bbh-boolean_expressions")
    tuned_records = [json.loads(line) for line in (out / boolean["tuned_run"] / "samples.jsonl").open()]
    assert boolean["tuned_chain"] == sum(r["correct"] for r in tuned_records) / 2
    report = (out / "report.md").read_text()
    assert "BIG-Bench-Hard, the first 2 items of each file" in report
    assert "| navigate | 50.0 | 0.0 | 0.0 |" in report
    assert "bbh-word_sorting-chain-tuned" in (out / "explorer.html").read_text()


def test_bbh_items_zero_leaves_the_part_and_its_engine_out(tmp_path, engines):
    out = tmp_path / "demo"
    assert main(demo_argv(out, "--bbh-items", "0", "--tuned", "")) == 0
    assert engines == [None]
    assert json.loads((out / "demo.json").read_text())["bbh"] == {}
    assert "BIG-Bench-Hard" not in (out / "report.md").read_text()


def test_a_broken_bbh_file_is_refused_before_any_model_loads(tmp_path, engines, monkeypatch, capsys):
    data = tmp_path / "data"
    (data / "bbh" / "tasks").mkdir(parents=True)
    (data / "bbh" / "tasks" / "multistep_arithmetic_two.json").write_text("{not json")
    monkeypatch.setenv("ENGINE_DATA", str(data))
    assert main(demo_argv(tmp_path / "demo")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: the demo's BBH part: ")
    assert "multistep_arithmetic_two.json" in err and err.endswith("(or pass --bbh-items 0 to leave that part out)")
    assert engines == []


def test_a_negative_bbh_items_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--bbh-items", "-1"])
    assert "--bbh-items must be at least 0, got -1" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--tuned", "--bbh-tuned"])
def test_a_misspelt_adapter_is_refused_before_any_model_loads(flag, tmp_path, engines, capsys):
    """The adapters run last: a wrong name found only then would cost the base model's whole run first."""
    assert main(demo_argv(tmp_path / "demo", flag, "smollm2-135m-bhh")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown model 'smollm2-135m-bhh'" in err and "smollm2-135m-bbh" in err
    assert engines == [] and not (tmp_path / "demo").exists()
