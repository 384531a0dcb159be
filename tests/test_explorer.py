"""The run explorer (`python -m engine report`): the data its page is built from, its files and its escaping.

Runs are real folders written by `run_eval` with scripted models (see explorer_runs.py). The page's behaviour
in a browser is tested in test_explorer_browser.py.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from engine.runs.compare import compare_paired
from engine.errors import EngineError
from engine.cli.main import main
from engine.explorer import write_explorer, write_run_explorer
from engine.explorer.data import find_runs, first_wrong, item_data, k_curves, load_run, page_data, status
from engine.explorer.page import DATA_ID, script_json
from engine.explorer.plots import depth_plot, strategy_plot
from explorer_runs import HOSTILE, answering, demo_folder, paired_runs


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    return paired_runs(tmp_path_factory.mktemp("paired"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_folder(tmp_path_factory.mktemp("demo") / "demo")


def data_block(page: str) -> str:
    start = page.index(f'<script type="application/json" id="{DATA_ID}">') + len(
        f'<script type="application/json" id="{DATA_ID}">')
    return page[start:page.index("</script>", start)]


def test_first_wrong_step_is_the_first_step_that_misses_its_gold():
    record = {"gold_steps": ["1", "7", "21"], "pred_steps": ["1", "8", None]}
    assert first_wrong(record) == 1
    assert first_wrong({"gold_steps": ["1", "7"], "pred_steps": [None, "7"]}) == 0
    assert first_wrong({"gold_steps": ["1", "7"], "pred_steps": ["1"]}) == 1  # a missing step is a miss
    assert first_wrong({"gold_steps": ["1", "7"], "pred_steps": ["1", "7"]}) is None
    assert first_wrong({"gold": "7"}) is None
    assert first_wrong({"gold_steps": ["2.0"], "pred_steps": ["2"]}, lambda p, g: float(p) == float(g)) is None
    item = item_data({"id": 3, "question": "q", "gold": "21", "answer": "20", "correct": False, "unparsed": False,
                      "steps": [], **record}, run=0, depth=3)
    assert (item["id"], item["status"], item["first_wrong"], item["has_steps"]) == ("3", "wrong", 1, True)
    assert item["depth"] == 3


def test_status_tells_correct_wrong_and_unparsed_apart():
    assert status({"correct": True, "unparsed": False, "answer": "3"}) == "correct"
    assert status({"correct": False, "unparsed": False, "answer": "4"}) == "wrong"
    assert status({"correct": False, "unparsed": True, "answer": None}) == "unparsed"


def test_items_carry_status_depth_steps_and_first_wrong_from_the_records(paired):
    data = page_data([load_run(folder) for folder in paired])
    assert [row["label"] for row in data["runs"]] == ["A", "B"]
    assert data["depths"] == [2]
    records = {(run, json.loads(line)["id"]): json.loads(line) for run, folder in enumerate(paired)
               for line in (folder / "samples.jsonl").read_text().splitlines()}
    assert len(data["items"]) == len(records) == 16
    for item in data["items"]:
        record = records[(item["run"], item["id"])]
        assert item["depth"] == 2
        assert item["status"] == ("unparsed" if record["unparsed"] else "correct" if record["correct"] else "wrong")
        assert item["steps"][0]["prompt"] == record["steps"][0]["prompt"]
        assert item["steps"][0]["outputs"] == record["steps"][0]["outputs"]
    assert [i["status"] for i in data["items"] if i["run"] == 1].count("unparsed") == 1
    # The cot texts state only a final answer, searched for the gold steps: a wrong answer equal to step 1's
    # value (A's items 0 and 3 answer 1 and 3, B's item 1 answers 3) gets step 1 right and goes wrong at
    # step 2; every other item misses its first step, right answer or not.
    late = {(0, "arith-d2-s0-0"), (0, "arith-d2-s0-3"), (1, "arith-d2-s0-1")}
    assert {(i["run"], i["id"]): i["first_wrong"] for i in data["items"]} == {
        (run, f"arith-d2-s0-{n}"): 1 if (run, f"arith-d2-s0-{n}") in late else 0 for run in (0, 1) for n in range(8)}


def test_paired_comparison_matches_engine_compare_and_lists_the_flips(paired):
    a, b = paired
    data = page_data([load_run(a), load_run(b)])
    (comparison,) = data["comparisons"]
    expected, verdicts, shared = compare_paired(str(a), str(b))
    assert (comparison["a"], comparison["b"], comparison["shared"]) == (0, 1, len(shared))
    assert comparison["mcnemar"] == expected["mcnemar"]
    assert comparison["bootstrap"] == expected["bootstrap"]
    assert comparison["delta"] == pytest.approx(expected["delta"])
    assert comparison["verdict"] == expected["verdict"]
    right_to_wrong = {i for i in shared if verdicts["a"][i] and not verdicts["b"][i]}
    wrong_to_right = {i for i in shared if not verdicts["a"][i] and verdicts["b"][i]}
    assert right_to_wrong == {"arith-d2-s0-1", "arith-d2-s0-5", "arith-d2-s0-7"}
    assert wrong_to_right == {"arith-d2-s0-0", "arith-d2-s0-6"}
    flips = comparison["flipped"]
    assert {f["id"] for f in flips if f["kind"] == "right_to_wrong"} == right_to_wrong
    assert {f["id"] for f in flips if f["kind"] == "wrong_to_right"} == wrong_to_right
    for flip in flips:  # each flip points at the two runs' own items
        assert (data["items"][flip["a"]]["run"], data["items"][flip["a"]]["id"]) == (0, flip["id"])
        assert (data["items"][flip["b"]]["run"], data["items"][flip["b"]]["id"]) == (1, flip["id"])


def test_a_demo_folder_expands_to_its_runs_and_items_take_their_runs_depth(demo):
    folders = find_runs([demo])
    assert [f.name for f in folders] == ["cot-d1", "cot-d2", "cot-d3", "direct-d1", "direct-d2", "direct-d3"]
    assert find_runs([demo, demo / "cot-d1"]) == folders  # a run named twice is shown once
    data = page_data([load_run(f) for f in folders])
    assert data["depths"] == [1, 2, 3]
    for item in data["items"]:
        assert item["depth"] == int(data["runs"][item["run"]]["label"][-1])
        assert item["id"].startswith(f"arith-d{item['depth']}-")
    pairs = {(data["runs"][c["a"]]["label"], data["runs"][c["b"]]["label"]) for c in data["comparisons"]}
    assert pairs == {("cot-d1", "direct-d1"), ("cot-d2", "direct-d2"), ("cot-d3", "direct-d3")}  # same items only


def test_depth_plot_has_a_line_per_strategy_only_when_runs_span_depths(demo):
    rows = page_data([load_run(f) for f in find_runs([demo])])["runs"]
    plot = depth_plot(rows)
    assert plot.count("<polyline") == 2 and plot.count("<circle") == 6
    assert depth_plot([r for r in rows if r["depth"] == 2]) is None
    assert strategy_plot(rows).count("<rect") >= 6


def test_runs_without_a_depth_beside_runs_by_depth_get_grey_bars_and_a_key(demo):
    """A demo's BBH runs (no depth) beside its arithmetic runs (shaded by depth): their bars must still be drawn,
    in a colour of their own, and many runs make a plot that takes the page's whole width instead of shrinking."""
    from engine.explorer.plots import NO_DEPTH

    rows = page_data([load_run(f) for f in find_runs([demo])])["runs"]
    fixed = [{**rows[0], "task": f"bbh-file-{n}", "strategy": "chain", "depth": None, "label": f"bbh-{n}"}
             for n in range(6)]
    plot = strategy_plot(rows + fixed)
    assert plot.count(f'fill="{NO_DEPTH}"') == 6 + 1  # six bars and the key's swatch
    assert "no depth (a task of fixed items)" in plot and 'fill="None"' not in plot
    assert 'class="plot wide"' in plot and 'class="plot wide"' not in strategy_plot(rows[:2])


def test_plot_labels_from_runs_are_escaped(demo):
    rows = page_data([load_run(f) for f in find_runs([demo])])["runs"]
    rows[0] = {**rows[0], "strategy": "<script>alert(1)</script>", "label": "<b>x</b>"}
    for plot in (depth_plot(rows), strategy_plot(rows)):
        assert "<script>" not in plot and "<b>" not in plot
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in plot


def test_folders_that_are_not_runs_get_one_line_errors(tmp_path):
    with pytest.raises(EngineError, match=r"nothing-here does not exist: pass a run folder"):
        write_explorer([tmp_path / "nothing-here"])
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    with pytest.raises(EngineError) as caught:
        write_explorer([empty])
    message = str(caught.value)
    assert "\n" not in message and str(empty) in message and "no summary.json" in message
    assert "python -m engine eval" in message
    (empty / "samples.jsonl").write_text("")
    with pytest.raises(EngineError, match="unfinished run"):
        find_runs([empty])


def test_a_cut_last_line_is_left_out_and_noted_not_fatal(paired, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(paired[0], run)
    samples = run / "samples.jsonl"
    whole = samples.read_bytes()
    samples.write_bytes(whole + b'{"id": "arith-d2-s0-99", "question": "Start wi')
    out = write_explorer([run])
    assert out == run / "report.html"
    data = json.loads(data_block(out.read_text(encoding="utf-8")))
    assert len(data["items"]) == 8
    assert any("half-written" in note for note in data["runs"][0]["notes"])
    assert samples.read_bytes().endswith(b"Start wi")  # a reader leaves the run's files as they are


def test_hostile_completions_appear_only_escaped(paired, tmp_path):
    out = write_explorer(list(paired), tmp_path / "page.html")
    page = out.read_text(encoding="utf-8")
    block = data_block(page)
    assert "<" not in block and ">" not in block and "&" not in block
    data = json.loads(block)
    outputs = [o for item in data["items"] for step in item["steps"] for o in step.get("outputs", [])]
    assert any(HOSTILE in o for o in outputs)  # kept exactly, as data
    assert page.count("</script>") == 2  # the data block's and the script's own: nothing else closes a script
    assert "<script>window.__pwned" not in page and "<img" not in page and 'onerror="' not in page
    assert re.search(r"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                     r"script-src 'sha256-[A-Za-z0-9+/=]+';", page)
    assert "unsafe-inline" not in page  # only the page's own script runs, by its hash
    markup = page.replace(block, "")
    assert not re.search(r"<link|\ssrc=|url\(|@import", markup)  # the page loads nothing from anywhere


def test_script_json_escapes_everything_that_could_end_the_script():
    text = script_json({"a": "</script><!-- & \u2028\u2029 >"})
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == {"a": "</script><!-- & \u2028\u2029 >"}


def test_write_run_explorer_uses_the_summary_and_records_it_is_handed(paired, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(paired[1], run)
    summary = json.loads((run / "summary.json").read_text())
    records = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    (run / "samples.jsonl").unlink()
    (run / "summary.json").unlink()
    out = write_run_explorer(run, summary, records)
    assert out == run / "report.html"
    data = json.loads(data_block(out.read_text(encoding="utf-8")))
    assert [i["id"] for i in data["items"]] == [r["id"] for r in records]
    assert data["runs"][0]["accuracy"] == summary["accuracy"]
    assert data["runs"][0]["settings"]["strategy"] == "cot"  # run.json is still read for the settings


def test_default_out_and_the_report_verb(paired, demo, tmp_path, monkeypatch, capsys):
    assert write_explorer([demo]) == demo / "explorer.html"
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(paired[0]), str(paired[1])]) == 0
    assert capsys.readouterr().out.strip() == "wrote explorer.html"
    assert (tmp_path / "explorer.html").exists()
    assert main(["report", str(paired[0]), "--out", str(tmp_path / "new" / "a.html")]) == 0
    assert (tmp_path / "new" / "a.html").exists()


def test_k_curves_end_at_the_summary_figures(tmp_path):
    from engine import EvalSettings, run_eval

    # each item's three samples, right (T) or wrong (F, always gold + 1), in the order they are drawn
    samples = ["FFF", "FTF", "FTT", "TFT", "TTT", "FTT"]
    backend = answering(1, 6, lambda i, gold: [f"The answer is {gold if s == 'T' else int(gold) + 1}."
                                               for s in samples[i]])
    summary = run_eval(EvalSettings(task="arithmetic", strategy="cot", depth=1, limit=6, samples=3,
                                    out=str(tmp_path / "sc"), no_cache=True), backend=backend, progress=False)
    run = load_run(tmp_path / "sc")
    curves = page_data([run])["runs"][0]["k_curves"]
    # Worked by hand. Right samples per item c = 0, 1, 2, 2, 3, 2 of n = 3; pass@k = 1 - C(n-c, k) / C(n, k):
    # pass@1 = c/3 summed over items = 10/3, over 6 items 5/9; pass@2 gives 0, 2/3, 1, 1, 1, 1 (14/18 = 7/9);
    # pass@3 is 1 for every item with a right sample: 5/6.
    # maj@1 is the first sample (T on items 3 and 4: 1/3); at k = 2 a tie goes to the first answer, so maj@2 =
    # maj@1; maj@3 is right where two of three are (items 2, 3, 4, 5: 2/3).
    assert curves["k"] == [1, 2, 3]
    assert curves["pass"] == pytest.approx([5 / 9, 7 / 9, 5 / 6])
    assert curves["maj"] == pytest.approx([1 / 3, 1 / 3, 2 / 3])
    assert (summary["pass@1"], summary["pass@3"], summary["maj@3"]) == pytest.approx((5 / 9, 5 / 6, 2 / 3))
    assert k_curves(run["records"][:0], None) is None


def test_a_bare_summary_from_an_older_run_still_renders(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "summary.json").write_text(json.dumps({"n": 2, "accuracy": 0.5, "task": "gsm8k"}))
    (old / "samples.jsonl").write_text(
        '{"id": 1, "question": "q", "gold": "2", "answer": "2", "correct": true}\n'
        '{"id": 2, "question": "q2", "gold": "3", "answer": null, "correct": false, '
        '"steps": [{"step": "s", "kind": "model", "prompt": "p", "outputs": ["o"]}]}\n')
    page = write_explorer([old]).read_text(encoding="utf-8")
    data = json.loads(data_block(page))
    assert [i["status"] for i in data["items"]] == ["correct", "unparsed"]
    assert data["runs"][0]["tokens_per_item"] is None and "no run.json" in page
    assert "<title>gsm8k</title>" in page and "completion tokens per item" not in page
