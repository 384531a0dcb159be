"""One start, many runs: comma lists of tasks, strategies and depths in one `eval` command."""

import json

import pytest

import engine.backends
from engine.cli.main import main


def test_every_combination_runs_on_one_backend_into_its_own_folder(tmp_path, tiny_model_dir, monkeypatch, capsys):
    loads = []
    real_load = engine.backends.load_backend

    def counting_load(*args, **kwargs):
        loads.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(engine.backends, "load_backend", counting_load)
    out = tmp_path / "many"
    code = main(["eval", "--task", "arithmetic", "--strategy", "direct,cot", "--depth", "1-2", "--limit", "3",
                 "--backend", "hf", "--model", tiny_model_dir, "--max-tokens", "4", "--out", str(out)])
    assert code == 0 and len(loads) == 1
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == ["arithmetic-cot-d1", "arithmetic-cot-d2", "arithmetic-direct-d1", "arithmetic-direct-d2"]
    for folder in folders:
        summary = json.loads((out / folder / "summary.json").read_text())
        assert summary["n"] == 3 and summary["depth"] == int(folder[-1]) and folder.split("-")[1] == summary["strategy"]
    rows = json.loads((out / "table.json").read_text())
    assert [(r["strategy"], r["depth"]) for r in rows] == [("direct", 1), ("direct", 2), ("cot", 1), ("cot", 2)]
    assert "| arithmetic | cot | 2 | 3 |" in (out / "table.md").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--task", "arithmetic,nope", "--strategy", "cot"], "unknown task 'nope'"),
    (["--task", "arithmetic", "--strategy", "cot,guess"], "unknown strategy 'guess'"),
    (["--task", "arithmetic", "--strategy", "guess"], "unknown strategy 'guess'"),
    (["--task", "arithmetic", "--depth", "0"], "--depth must be a whole number from 1"),
    (["--task", "arithmetic", "--depth", "3-1"], "depth"),
])
def test_a_bad_name_in_a_list_is_refused_before_any_model_loads(argv, message, monkeypatch, capsys):
    def no_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the lists were checked")

    monkeypatch.setattr(engine.backends, "load_backend", no_load)
    assert main(["eval", *argv, "--limit", "2"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and len(error.strip().splitlines()) == 1
