"""Runs that survive a kill: the step cache, resuming, the folder lock, atomic files, `verify`, refused prompts."""

import json
import re
import subprocess
import sys

import pytest

from engine.backends import ScriptedBackend
from engine.chains.nodes import Sequence, Step
from engine.cli.main import main
from engine.errors import EngineError
from engine import EvalSettings, run_eval
from engine.runs.folder import claim_run_folder
from engine.files import FolderLock, read_records, write_atomic
from engine.generation import GenerationRequest
from engine.sampling import SamplingSettings
from engine.chains.scheduler import ExampleRun, run_all
from engine.runs.step_cache import CachedBackend, StepCache, model_identity

from crash_driver import SlowSolver, settings as crash_settings, solve_step


def solver() -> SlowSolver:
    return SlowSolver(delay=0.0)


def records_of(out) -> list[dict]:
    return read_records(out / "samples.jsonl")[0]


def conclusions(records):
    return [(r["id"], r["answer"], r["correct"]) for r in records]


def test_a_rerun_is_answered_from_the_step_cache(tmp_path):
    first = run_eval(crash_settings(str(tmp_path / "a"), str(tmp_path / "c.sqlite")), backend=solver(), progress=False)
    again = solver()
    second = run_eval(crash_settings(str(tmp_path / "b"), str(tmp_path / "c.sqlite")), backend=again, progress=False)
    assert again.calls == []  # nothing reached the backend
    assert second["step_cache"]["misses"] == 0 and second["step_cache"]["hits"] == first["step_cache"]["misses"] + first["step_cache"]["hits"]
    assert conclusions(records_of(tmp_path / "a")) == conclusions(records_of(tmp_path / "b"))
    assert all(s["cached"] for r in records_of(tmp_path / "b") for s in r["steps"] if s["kind"] != "compute")
    fresh = solver()
    run_eval(crash_settings(str(tmp_path / "c"), str(tmp_path / "c.sqlite")).model_copy(update={"no_cache": True}),
             backend=fresh, progress=False)
    assert len(fresh.calls) == first["waves"]  # --no-cache generates everything


def test_a_scripted_backend_without_identity_is_never_cached(tmp_path):
    backend = ScriptedBackend(lambda r: "The answer is 3")
    cache = StepCache(tmp_path / "c.sqlite")
    assert model_identity(backend, cache) is None
    cache.close()
    # the same run twice on one cache file: the second asks the backend everything again, and nothing is stored
    first, second = ScriptedBackend(solve_step), ScriptedBackend(solve_step)
    run_eval(crash_settings(str(tmp_path / "a"), str(tmp_path / "c.sqlite")), backend=first, progress=False)
    summary = run_eval(crash_settings(str(tmp_path / "b"), str(tmp_path / "c.sqlite")), backend=second, progress=False)
    assert summary["step_cache"] is None and len(second.calls) == len(first.calls) == summary["waves"] > 0
    assert StepCache(tmp_path / "c.sqlite").stats()["entries"] == 0
    assert conclusions(records_of(tmp_path / "a")) == conclusions(records_of(tmp_path / "b"))


@pytest.fixture
def three_templates(tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "one.jinja").write_text("One: {{ question }}\n")
    (folder / "two.jinja").write_text("Two: {{ one }}\n")
    (folder / "three.jinja").write_text("Three: {{ two }}\n")
    return folder


def chain_of_three(folder):
    dirs = (str(folder),)
    return Sequence(Step("one", "one.jinja", template_dirs=dirs), Step("two", "two.jinja", template_dirs=dirs),
                    Step("three", "three.jinja", template_dirs=dirs))


def echo(request):
    """Output depends on the whole prompt, so a changed prompt changes everything downstream."""
    return f"<{request.prompt.strip()}>"


def run_three(folder, backend):
    runs = [ExampleRun({"question": f"q{i}"}) for i in range(5)]
    run_all(chain_of_three(folder), runs, backend)
    return [run.state["three"] for run in runs]


def test_editing_a_template_reruns_that_step_onward_and_nothing_before(tmp_path, three_templates):
    cache = StepCache(tmp_path / "c.sqlite")
    scripted = ScriptedBackend(echo, identity="echo")
    before = run_three(three_templates, CachedBackend(scripted, cache, "echo"))
    assert len(scripted.calls) == 3

    (three_templates / "two.jinja").write_text("Two, edited: {{ one }}\n")
    scripted = ScriptedBackend(echo, identity="echo")
    after = run_three(three_templates, CachedBackend(scripted, cache, "echo"))
    asked = [{request.prompt.split(":")[0] for request in call} for call in scripted.calls]
    assert asked == [{"Two, edited"}, {"Three"}]  # step one came from the cache
    assert after != before


def test_two_sample_indices_never_share_a_cached_sample(tmp_path):
    cache = StepCache(tmp_path / "c.sqlite")
    counter = iter(range(1000))
    scripted = ScriptedBackend(lambda r: f"sample {next(counter)}", identity="counter")
    backend = CachedBackend(scripted, cache, "counter")
    sampled = [GenerationRequest(prompt="Pick a number", sampling=SamplingSettings(temperature=0.7, seed=7 + i))
               for i in range(3)]  # a chain offsets the seed per sample index
    first = [r.text for r in backend.generate(sampled)]
    assert len(set(first)) == 3
    assert [r.text for r in backend.generate(sampled)] == first  # reproducible under the seed
    unseeded = GenerationRequest(prompt="Pick a number", sampling=SamplingSettings(temperature=0.7))
    a, b = backend.generate([unseeded, unseeded])
    assert a.text != b.text and not a.cached and not b.cached  # an unseeded sample is never replayed
    greedy = GenerationRequest(prompt="Say hi")
    x, y = backend.generate([greedy, greedy])
    assert x.text == y.text and len(scripted.calls[-1]) == 1  # identical greedy requests: generated once


def test_model_identity_follows_weights_and_dtype(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights-1")
    (folder / "tokenizer_config.json").write_text("{}")
    cache = StepCache(tmp_path / "c.sqlite")

    class Loaded:
        model, dtype = str(folder), "float32"

    one = model_identity(Loaded, cache)
    assert model_identity(Loaded, cache) == one and str(folder) in one
    (folder / "model.safetensors").write_bytes(b"weights-2")
    two = model_identity(Loaded, cache)
    Loaded.dtype = "bfloat16"
    assert len({one, two, model_identity(Loaded, cache)}) == 3


def kill_after(waves: int):
    """A solver that dies (like a SIGKILL: nothing after it runs) after `waves` backend calls."""
    backend = solver()
    generate = backend.generate

    def dying(requests):
        if len(backend.calls) >= waves:
            raise KeyboardInterrupt
        return generate(requests)

    backend.generate = dying
    return backend


def test_an_interrupted_run_resumes_and_repairs_a_half_written_line(tmp_path):
    reference = run_eval(crash_settings(str(tmp_path / "ref"), str(tmp_path / "ref.sqlite")), backend=solver(),
                         progress=False)
    out, cache = tmp_path / "run", str(tmp_path / "c.sqlite")
    with pytest.raises(KeyboardInterrupt):
        run_eval(crash_settings(str(out), cache), backend=kill_after(3), progress=False)
    finished = len(records_of(out))
    assert 0 < finished < 40 and not (out / "summary.json").exists()
    with open(out / "samples.jsonl", "a") as sink:
        sink.write('{"id": "arith-d6-s0-39", "question": "Start')  # a kill mid-write
    again = solver()
    summary = run_eval(crash_settings(str(out), cache), backend=again, progress=False)
    assert summary["resumed_items"] == finished
    assert summary["step_cache"]["hits"] > 0 and len(again.calls) < reference["waves"] + 1
    assert conclusions(records_of(out)) == conclusions(records_of(tmp_path / "ref"))
    assert summary["accuracy"] == reference["accuracy"]


def test_a_resume_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_eval(crash_settings(str(out), str(tmp_path / "c.sqlite")), backend=kill_after(2), progress=False)
    changed = crash_settings(str(out), str(tmp_path / "c.sqlite")).model_copy(update={"limit": 30})
    with pytest.raises(EngineError, match=r"other settings \(limit differ"):
        run_eval(changed, backend=solver(), progress=False)


def test_a_second_writer_of_one_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    with FolderLock(out):
        with pytest.raises(EngineError, match=rf"{re.escape(str(out))} is being written by process \d+"):
            run_eval(crash_settings(str(out), str(tmp_path / "c.sqlite")), backend=solver(), progress=False)
    with FolderLock(out):  # released: the folder can be claimed again
        pass


def test_a_second_writer_in_another_process_is_refused(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from engine.files import FolderLock\n"
                               f"with FolderLock({str(out)!r}):\n    print('held', flush=True); time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(EngineError, match=f"being written by process {holder.pid}"):
            run_eval(crash_settings(str(out), str(tmp_path / "c.sqlite")), backend=solver(), progress=False)
    finally:
        holder.kill()
        holder.wait()


def test_runs_started_in_the_same_second_get_their_own_folders():
    settings = EvalSettings(task="arithmetic", strategy="direct")
    folders = {claim_run_folder(settings, "arithmetic", "direct") for _ in range(3)}
    assert len(folders) == 3


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    write_atomic(target, "old")

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr("engine.files.os.replace", broken)
    with pytest.raises(OSError):
        write_atomic(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_verify_finds_a_forged_summary_a_doubled_item_and_a_wrong_score(tmp_path, capsys):
    out = tmp_path / "run"
    run_eval(crash_settings(str(out), str(tmp_path / "c.sqlite")), backend=solver(), progress=False)
    assert main(["verify", str(out)]) == 0
    assert "ok (40 items" in capsys.readouterr().out

    summary = json.loads((out / "summary.json").read_text())
    summary["accuracy"] += 0.1
    (out / "summary.json").write_text(json.dumps(summary))
    lines = (out / "samples.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["correct"] = not first["correct"]
    (out / "samples.jsonl").write_text("\n".join([json.dumps(first)] + lines[1:] + [lines[1]]) + "\n")
    assert main(["verify", str(out)]) == 1
    said = capsys.readouterr().out
    assert "summary.json says accuracy" in said
    assert f"item {json.loads(lines[1])['id']} appears 2 times" in said
    assert f"item {first['id']}: recorded correct={first['correct']}" in said


def test_compare_reads_a_folder_whose_last_line_was_cut(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    run_eval(crash_settings(str(a), str(tmp_path / "c.sqlite")), backend=solver(), progress=False)
    run_eval(crash_settings(str(b), str(tmp_path / "c.sqlite")), backend=solver(), progress=False)
    with open(b / "samples.jsonl", "a") as sink:
        sink.write('{"id": "arith-d6-s0-1", "corr')
    assert main(["compare", str(a), str(b)]) == 0
    assert "items compared: 40" in capsys.readouterr().out


def test_the_cache_verb_reports_and_prunes(tmp_path, capsys):
    cache = tmp_path / "c.sqlite"
    run_eval(crash_settings(str(tmp_path / "run"), str(cache)), backend=solver(), progress=False)
    assert main(["cache", "stats", "--file", str(cache)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["entries"] > 0 and stats["models"] == {"crash-test-solver-v1": stats["entries"]}
    assert main(["cache", "prune", "--file", str(cache)]) == 2  # prune without a criterion: one-line error
    assert "needs --unused-days" in capsys.readouterr().err
    assert main(["cache", "prune", "--file", str(cache), "--unused-days", "1"]) == 0
    assert f"removed 0 entries from {cache}; {stats['entries']} left" in capsys.readouterr().out
    assert main(["cache", "prune", "--file", str(cache), "--model", "crash-test"]) == 0
    assert StepCache(cache).stats()["entries"] == 0


def test_a_prompt_longer_than_the_context_fails_its_item_alone(tiny_hf):
    short = GenerationRequest(prompt="Hello there")
    long = GenerationRequest(prompt="word " * 600)  # the tiny model's context is 512 positions
    ok, refused = tiny_hf.generate([short, long])
    assert ok.completions and ok.error is None
    assert refused.completions == () and "the model's context holds 512" in refused.error



def test_a_refused_prompt_fails_one_item_and_the_run_goes_on(tiny_hf, tmp_path):
    data = tmp_path / "items.jsonl"
    rows = [{"question": f"Tom has {n} apples. How many?", "answer": f"#### {n}"} for n in (1, 2, 3)]
    rows.insert(1, {"question": "apples " * 700, "answer": "#### 4"})
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    summary = run_eval(EvalSettings(task="gsm8k", strategy="cot", data=str(data), max_tokens=4,
                                    out=str(tmp_path / "run")), backend=tiny_hf, progress=False)
    records = records_of(tmp_path / "run")
    assert summary["n"] == 4 and summary["errors"] == 1
    assert "the model's context holds 512" in records[1]["error"] and records[1]["unparsed"]
    assert all(r["error"] is None and r["steps"] for i, r in enumerate(records) if i != 1)
    assert summary["truncated_rate"] == 0.75  # 4 new tokens: every generated answer was cut at the limit
