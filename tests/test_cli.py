"""The command line: one-line errors for bad input, and the verbs that need no model."""

import json

import pytest

from engine.cli.main import main


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_models_marks_the_default(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "smollm2-135m (default)" in out
    # each shipped adapter says what it learnt: one task's chain, or a mixture's tasks each with its own chain
    assert "smollm2-135m-stepwise: smollm2-135m + LoRA adapter, fine-tuned on arithmetic stepwise chains" in out
    assert ("smollm2-135m-bbh: smollm2-135m + LoRA adapter, fine-tuned on 4 tasks (bbh-multistep_arithmetic_two, "
            "bbh-boolean_expressions, bbh-navigate, bbh-tracking_shuffled_objects_three_objects), each with its own "
            "chain") in out


@pytest.mark.parametrize("argv, message", [
    (["generate", "hi", "--n", "0"], "--n must be at least 1, got 0"),
    (["generate", "hi", "--max-tokens", "-3"], "--max-tokens must be at least 1, got -3"),
])
def test_bad_numbers_are_refused_by_the_parser(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["generate", "   "], "error: the prompt is empty"),
    (["generate", "hi", "--model", "gpt-17"], "error: unknown model 'gpt-17'"),
    (["eval", "--task", "nope"], "error: unknown task 'nope'"),
    (["generate", "hi", "--temperature", "-1"], "error: temperature must be 0"),
])
def test_user_errors_are_one_line(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.startswith(message) and err.count("\n") == 1


def test_render_shows_the_exact_chat_text(capsys, default_model_dir):
    code, out, _ = run(capsys, "render", "--task", "arithmetic", "--strategy", "cot", "--index", "2", "--depth", "2")
    assert code == 0
    assert "<|im_start|>user\nStart with" in out and out.rstrip().endswith("<|im_start|>assistant")
    assert "Let's think step by step." in out


def test_render_fewshot_puts_exemplars_first(capsys, default_model_dir, shared_data):
    code, out, _ = run(capsys, "render", "--task", "bbh-navigate", "--strategy", "fewshot-cot")
    assert code == 0
    body = out.split("\n", 2)[2]
    assert body.startswith("Given a series of navigation instructions") and body.count("\nQ: ") == 4


def test_compare_two_runs(capsys, tmp_path):
    def write(name, flags):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "samples.jsonl").write_text("".join(json.dumps({"id": str(i), "correct": f}) + "\n" for i, f in enumerate(flags)))
        return str(folder)

    a = write("a", [False] * 30 + [True] * 10)
    b = write("b", [True] * 30 + [True] * 10)
    code, out, _ = run(capsys, "compare", a, b)
    assert code == 0 and "A wrong/B right 30" in out and "beyond noise" in out
    code, out, _ = run(capsys, "compare", a, a)
    assert "within noise" in out


def test_compare_needs_run_folders(capsys, tmp_path):
    code, _, err = run(capsys, "compare", str(tmp_path), str(tmp_path))
    assert code == 2 and "has no samples.jsonl" in err
