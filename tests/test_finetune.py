"""Fine-tuning on chains: training text is evaluation text, self-taught rounds, a real (tiny) training run, bad input."""

import json

import pytest
from conftest import real_task

from engine.backends import ScriptedBackend
from engine.cli.main import main
from engine.errors import EngineError
from engine.finetune import FinetuneSettings, finetune
from engine.finetune.gold import GOLD_STRATEGIES
from engine.finetune.selftaught import hint_text, self_taught_pairs, without_hint
from engine.finetune.traces import gold_pairs
from engine.finetune.train import IGNORE, tokenize_pairs
from engine.tasks.spec import TASKS_DIR
from engine.chains.strategies import build_chain, initial_state
from engine.synthetic import arithmetic
from engine.tasks.spec import load_spec


@pytest.fixture(scope="module")
def tokenizer(default_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_model_dir)


def pairs_for(strategy, items, tokenizer):
    spec, _ = load_spec("arithmetic")
    return gold_pairs(build_chain(strategy, spec), strategy, items, [initial_state(e, spec, []) for e in items], tokenizer)


@pytest.mark.parametrize("strategy", GOLD_STRATEGIES)
def test_training_prompt_is_exactly_what_render_prints(strategy, tokenizer, capsys):
    assert main(["render", "--task", "arithmetic", "--strategy", strategy, "--depth", "3", "--index", "4"]) == 0
    rendered = capsys.readouterr().out.split("\n", 2)[2].rstrip("\n")  # after the two header lines
    (item,) = [e for e in arithmetic.generate(5, 3, seed=0)][4:]
    first = pairs_for(strategy, [item], tokenizer)[0]
    assert first.prompt.rstrip("\n") == rendered
    assert first.prompt.endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize("strategy, pairs_per_item", [("direct", lambda d: 1), ("cot", lambda d: 1),
                                                      ("calc", lambda d: 1), ("decompose", lambda d: d + 1),
                                                      ("stepwise", lambda d: d + 2)])
def test_every_gold_chain_reaches_the_gold_answer_through_the_real_chain(strategy, pairs_per_item, tokenizer):
    for depth in (1, 2, 4, 7):
        items = arithmetic.generate(20, depth, seed=9)
        pairs = pairs_for(strategy, items, tokenizer)  # raises if a chain ends anywhere but the gold answer
        assert len(pairs) == 20 * pairs_per_item(depth)
        assert all(p.completion.strip() for p in pairs)


def test_calc_gold_is_annotated_and_stepwise_gold_is_one_instruction(tokenizer):
    item = arithmetic.generate(1, 3, seed=0)[0]  # Start with 2. Divide by 2. Multiply by 7. Multiply by 3.
    assert pairs_for("calc", [item], tokenizer)[0].completion == "<<2/2=1>>\n<<1*7=7>>\n<<7*3=21>>\nThe answer is 21."
    steps = [p.completion for p in pairs_for("stepwise", [item], tokenizer)]
    assert steps == ["Start with 2. <<2=2>>", "Divide by 2. <<2/2=1>>", "Multiply by 7. <<1*7=7>>",
                     "Multiply by 3. <<7*3=21>>", "The answer is 21."]


def test_only_the_models_turn_is_learned(tokenizer):
    pair = pairs_for("direct", arithmetic.generate(1, 2, seed=0), tokenizer)[0]
    (row,) = tokenize_pairs([pair], tokenizer)
    prompt_length = len(tokenizer(pair.prompt, add_special_tokens=False)["input_ids"])
    assert row["labels"][:prompt_length] == [IGNORE] * prompt_length
    learned = [t for t in row["labels"] if t != IGNORE]
    assert tokenizer.decode(learned) == pair.completion + tokenizer.eos_token
    assert row["input_ids"][prompt_length:] == learned


def test_a_self_taught_round_keeps_exactly_the_correct_chains(tokenizer):
    """Sample 4 chains per item; the scripted model is right on even seeds only for items 0-2, and item 3 only
    with the hint; item 4 never. Kept: 2 distinct correct chains each for 0-2, and 2 hinted ones for item 3."""
    spec, _ = load_spec("arithmetic")
    items = arithmetic.generate(5, 2, seed=4)
    by_question = {e.question: i for i, e in enumerate(items)}

    def script(request):
        text = request.messages[-1][1]
        index = next(i for q, i in by_question.items() if q in text)
        seed = request.sampling.seed
        right = f"Thinking {seed}. The answer is {items[index].gold}."
        if index < 3 and seed % 2 == 0:
            return right
        if index == 3 and "Hint:" in text:
            return right if seed % 2 == 0 else "The answer is -1."
        return "The answer is -1."

    chain = build_chain("cot", spec)
    states = [initial_state(e, spec, []) for e in items]
    found = self_taught_pairs(chain, items, states, spec, ScriptedBackend(script), k=4, temperature=0.7, seed=10)
    assert (found.items, found.solved, found.rationalized) == (5, 3, 1)
    assert found.kept_chains == 8 and len(found.pairs) == 8
    assert found.sampled_chains == 5 * 4 + 2 * 4  # a second try, with the hint, for the two unsolved items
    assert all(items[int(p.item.rsplit("-", 1)[1])].gold in p.completion for p in found.pairs)
    assert not any("Hint:" in p.prompt for p in found.pairs)  # trained without the hint
    hinted = [p for p in found.pairs if p.item == items[3].id]
    from engine.chains.scheduler import ExampleRun

    unhinted = chain.request(ExampleRun(dict(states[3])))  # the prompt item 3 has without a hint
    assert len(hinted) == 2 and all(p.prompt == "\n".join(c for _, c in unhinted.messages) for p in hinted)


def test_the_hint_comes_out_exactly(tokenizer):
    spec, _ = load_spec("arithmetic")
    item = arithmetic.generate(1, 3, seed=2)[0]
    for strategy in ("direct", "cot", "calc", "stepwise"):
        chain = build_chain(strategy, spec)
        state = initial_state(item, spec, [])
        plain = gold_pairs(chain, strategy, [item], [state], tokenizer)[0]
        hinted = gold_pairs(chain, strategy, [item], [dict(state, hint=hint_text(item))], tokenizer)[0]
        assert hint_text(item) in hinted.prompt and hinted.prompt != plain.prompt
        assert without_hint(hinted, hint_text(item)).prompt == plain.prompt


def small(tmp_path, tiny_model_dir, **extra):
    options = dict(task="arithmetic", strategy="stepwise", model=tiny_model_dir, max_steps=8, eval_every=4,
                   train_items=16, val_items=2, test_items=4, depths="1-2", test_depths="1,3", backend="hf",
                   learning_rate=5e-3, batch_size=4, out=str(tmp_path / "ft"))
    options.update(extra)
    return options


def test_a_tiny_model_learns_and_the_result_is_a_model_everywhere(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "cache"))
    summary = finetune(progress=lambda m: None, **small(tmp_path, tiny_model_dir))
    (round_,) = summary["rounds"]
    assert round_["steps"] == 8 and round_["first_loss"] > round_["last_loss"]
    assert [v["step"] for v in round_["validation"]] == [4, 8]
    assert summary["data"]["overlap"] == 0 and summary["compute"]["tokens_seen"] > 0
    for depth in ("1", "3"):
        row = summary["test"][depth]
        assert row["n"] == 4 and 0.0 <= row["mcnemar_p"] <= 1.0 and "ci95" in row["bootstrap"]
    folder = tmp_path / "ft"
    assert (folder / "model" / "adapter_config.json").exists() and (folder / "summary.json").exists()
    assert list((folder / "round-1" / "tensorboard").glob("events.out.tfevents.*"))
    log = json.loads((folder / "round-1" / "training_log.json").read_text())
    assert any("eval_accuracy" in entry for entry in log) and any("loss" in entry for entry in log)
    # the adapter is a --model: merged once into a cached checkpoint that hf loads like any other
    from engine.backends import load_backend
    from engine.generation import GenerationRequest
    from engine.models import resolve_model
    from engine.sampling import SamplingSettings

    merged = resolve_model(str(folder / "model"))
    assert merged.startswith(str(tmp_path / "cache")) and resolve_model(str(folder / "model")) == merged
    backend = load_backend("hf", str(folder / "model"))
    (result,) = backend.generate([GenerationRequest(prompt="Value: 3", sampling=SamplingSettings(max_tokens=4))])
    assert result.completions[0].completion_tokens >= 1
    runs = summary["test"]["1"]
    tuned = [json.loads(l)["correct"] for l in (folder / "test" / "tuned" / "d1" / "samples.jsonl").read_text().splitlines()]
    assert runs["tuned"] == sum(tuned) / len(tuned)
    # the same adapter pointed at a base of another shape: one clear error, not a traceback
    import shutil

    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from engine.errors import ModelError

    other = tmp_path / "other-base"
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(other)
    tokenizer.save_pretrained(other)
    moved = tmp_path / "moved-adapter"
    shutil.copytree(folder / "model", moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    (moved / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(other)}))
    with pytest.raises(ModelError, match="does not fit its base model"):
        resolve_model(str(moved))


def test_a_merged_adapter_answers_as_base_plus_adapter_not_as_the_base(tmp_path, tiny_model_dir, monkeypatch):
    """A LoRA adapter with non-zero weights, given as --model: the merged checkpoint's logits are the adapted
    model's, and differ from the base's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from engine.models import resolve_model

    monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    adapted = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                              init_lora_weights=False))  # random A and B: a real change
    adapted.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([[1, 20, 300, 4000, 5]])
    with torch.no_grad():
        with_adapter = adapted(ids).logits
        with adapted.disable_adapter():
            without = adapted(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(resolve_model(str(tmp_path / "adapter")), dtype=torch.float32)
        answer = merged(ids).logits
    assert (with_adapter - without).abs().max() > 1e-2  # the adapter changes the answer ...
    torch.testing.assert_close(answer, with_adapter, rtol=1e-4, atol=1e-4)  # ... and the merged model gives it


def _validating(monkeypatch, accuracy: float) -> None:
    """Every validation scores `accuracy`, whatever the model."""
    import engine.finetune.run as run

    monkeypatch.setattr(run, "_validator", lambda *args: lambda model, tokenizer: accuracy)


def test_equal_validations_keep_the_later_checkpoint(tmp_path, tiny_model_dir, monkeypatch):
    """The library keeps the first of equal scores; the engine ranks a tie to the checkpoint that trained longer."""
    monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "cache"))
    _validating(monkeypatch, 0.5)
    (round_,) = finetune(progress=lambda m: None, **small(tmp_path, tiny_model_dir))["rounds"]
    assert round_["steps"] == 8 and round_["loaded_step"] == 8 and round_["best_validation_accuracy"] == 0.5


@pytest.mark.parametrize("train_task, steps", [(None, 4), ("arithmetic", 8)])
def test_a_perfect_validation_stops_only_a_run_validated_on_its_own_task(train_task, steps, tmp_path,
                                                                        tiny_model_dir, monkeypatch):
    """Perfect on the task's own items: nothing left to gain. Perfect on a --train-task generator's items: the real
    items may still go wrong, so the run spends its budget."""
    monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "cache"))
    _validating(monkeypatch, 1.0)
    rows = [{"question": e.question, "answer": e.gold} for e in arithmetic.generate(6, 3, seed=99)]
    task = "arithmetic" if train_task is None else real_task(tmp_path, rows)
    options = small(tmp_path, tiny_model_dir, task=task, train_task=train_task, test_items=2)
    (round_,) = finetune(progress=lambda m: None, **options)["rounds"]
    assert round_["steps"] == steps and round_["loaded_step"] == steps


def test_a_stopped_run_resumes_from_its_last_checkpoint(tmp_path, tiny_model_dir, monkeypatch):
    import engine.finetune.train as train
    from transformers import TrainerCallback

    real = train._stop_when_perfect

    class Killed(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 6:
                raise KeyboardInterrupt  # as a Ctrl-C would, after the checkpoint of step 4

    monkeypatch.setattr(train, "_stop_when_perfect", lambda: Killed())
    with pytest.raises(KeyboardInterrupt):
        finetune(progress=lambda m: None, **small(tmp_path, tiny_model_dir))
    monkeypatch.setattr(train, "_stop_when_perfect", real)
    with pytest.raises(EngineError, match="pass --resume to continue it"):
        finetune(progress=lambda m: None, **small(tmp_path, tiny_model_dir))
    summary = finetune(progress=lambda m: None, resume=True, **small(tmp_path, tiny_model_dir))
    (round_,) = summary["rounds"]
    assert round_["resumed_from"].endswith("checkpoint-4") and round_["steps"] == 8


def test_bad_input_is_one_clear_error(tmp_path, tiny_model_dir, capsys):
    def error(*argv):
        code = main(["finetune", *argv])
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1]  # progress lines may come first, on stderr
        assert code == 2 and last.startswith("error: ") and "Traceback" not in err, err
        return last

    out = str(tmp_path / "a")
    assert "--max-steps must be at least 1, got 0" in error("--task", "arithmetic", "--strategy", "cot",
                                                             "--max-steps", "0", "--out", out)
    assert "canary" in error("--task", "bbh-navigate", "--strategy", "cot", "--out", out)
    assert "has no training split" in error("--task", "nli", "--strategy", "cot", "--out", out)
    assert "lists the strategies direct, cot, decompose, sc, not calc" in error(
        "--task", "shuffled-objects", "--strategy", "calc", "--model", tiny_model_dir, "--out", out)
    listed = tmp_path / "shuffled-calc.yaml"  # a task that lists calc but whose items carry no calculations
    listed.write_text((TASKS_DIR / "shuffled-objects.yaml").read_text().replace("sc]", "sc, calc]"))
    assert "has no gold calculations" in error("--task", str(listed), "--strategy", "calc",
                                               "--model", tiny_model_dir, "--out", out)
    # a custom chain may now train on its gold writer (test_gold_writers.py); a missing file is one line
    assert "x.py does not exist" in error("--task", "arithmetic", "--chain", "x.py:y", "--out", out)
    assert "--strategy (a built-in strategy) or --chain" in error("--task", "arithmetic", "--out", out)
    # a base model folder without a tokenizer
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(tiny_model_dir, bare)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (bare / name).unlink(missing_ok=True)
    assert "has no tokenizer" in error("--task", "arithmetic", "--strategy", "cot", "--model", str(bare), "--out", out)
    # an --out folder that holds a different run
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "finetune-run.json").write_text(json.dumps({"task": "arithmetic", "strategy": "direct"}))
    assert "holds a different fine-tuning run" in error("--task", "arithmetic", "--strategy", "cot", "--model",
                                                        tiny_model_dir, "--out", str(tmp_path / "b"))


def test_training_data_that_overlaps_the_test_items_is_refused(tmp_path):
    from engine.finetune.data import build_splits

    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n" for i in range(30)))
    task = tmp_path / "mine.yaml"
    task.write_text(f"name: mine\nsource: {{path: {data}}}\nanswer_type: number\nparser: number\n"
                    f"train: {{path: {data}}}\n")
    spec, base = load_spec(str(task))
    with pytest.raises(EngineError, match="is its evaluation file"):
        build_splits(FinetuneSettings(task=str(task), strategy="direct", out="x"), spec, base)
    other = tmp_path / "train.jsonl"
    other.write_text(data.read_text())  # a copy: same items under another name
    task.write_text(task.read_text().replace(f"train: {{path: {data}}}", f"train: {{path: {other}}}"))
    spec, base = load_spec(str(task))
    with pytest.raises(EngineError, match="also test items"):
        build_splits(FinetuneSettings(task=str(task), strategy="direct", out="x", val_items=2), spec, base)


def test_synthetic_splits_never_meet(tmp_path):
    from engine.finetune.data import build_splits, content_hash

    spec, base = load_spec("arithmetic")
    splits = build_splits(FinetuneSettings(task="arithmetic", strategy="cot", out="x", train_items=300,
                                           test_items=200, depths="1-2", test_depths="1,2"), spec, base)
    test = {content_hash(e) for items in splits.test.values() for e in items}
    train, validation = {content_hash(e) for e in splits.train}, {content_hash(e) for e in splits.validation}
    assert not (train & test) and not (validation & test) and not (train & validation)
    assert splits.skipped_overlapping > 0  # depth 1 has few distinct items: the test set takes many of them
    assert splits.test[1] == arithmetic.generate(200, 1, seed=0)  # exactly what `eval --depth 1` scores


@pytest.mark.vllm
@pytest.mark.model
def test_an_adapter_of_the_real_model_runs_on_vllm(tmp_path, monkeypatch):
    """Two LoRA steps on the real model, then the before/after test on vLLM: base, and the merged adapter."""
    monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "cache"))
    from engine.models import cache_dir  # the base is converted into the temp cache once more: only 20 s

    summary = finetune(progress=lambda m: None, task="arithmetic", strategy="direct", max_steps=2, eval_every=2,
                       train_items=4, val_items=1, test_items=4, depths="1", test_depths="2", batch_size=2,
                       backend="vllm", out=str(tmp_path / "ft"))
    assert summary["test"]["2"]["n"] == 4 and summary["rounds"][0]["steps"] == 2
    (merged,) = (cache_dir() / "merged").iterdir()
    assert (merged / "engine-merged.json").exists() and (merged / "model.safetensors").exists()
    tuned = json.loads((tmp_path / "ft" / "test" / "tuned" / "d2" / "summary.json").read_text())
    assert tuned["backend"] == "vllm" and tuned["model"] == str(tmp_path / "ft" / "model")
    assert tuned["completion_tokens"] > 0


@pytest.mark.parametrize("strategy", ["direct", "cot", "calc"])
def test_gsm8k_trains_on_its_train_split_with_its_worked_solutions(strategy, tokenizer, shared_data):
    from engine.finetune.data import _train_rows

    spec, base = load_spec("gsm8k")
    items = _train_rows(spec, base)[:40]
    assert all("solution" in e.fields for e in items)
    chain = build_chain(strategy, spec)
    pairs = gold_pairs(chain, strategy, items, [initial_state(e, spec, []) for e in items], tokenizer)
    assert len(pairs) == 40  # every chain, calculator included, ended with the gold answer
    if strategy == "calc":
        assert "<<48/2=24>>" in pairs[0].completion and pairs[0].completion.endswith("The answer is 72.")
    if strategy == "cot":
        assert "<<" not in pairs[0].completion


def test_batches_grouped_by_length_still_train(tmp_path, tiny_model_dir, monkeypatch):
    """--group-by-length hands the library's LengthGroupedSampler our tokenized rows: it must find their lengths
    and the run must train and validate as an unordered one does."""
    monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "cache"))
    summary = finetune(progress=lambda m: None, **small(tmp_path, tiny_model_dir, group_by_length=True))
    (round_,) = summary["rounds"]
    assert round_["steps"] == 8 and round_["first_loss"] > round_["last_loss"]
    assert [v["step"] for v in round_["validation"]] == [4, 8] and summary["settings"]["group_by_length"] is True


def test_packed_and_mixed_precision_batches_train(tmp_path, tiny_model_dir, monkeypatch):
    """Packing (the default) and --bf16 together: the run trains, validates and records both settings."""
    monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "cache"))
    summary = finetune(progress=lambda m: None, **small(tmp_path, tiny_model_dir, bf16=True))
    (round_,) = summary["rounds"]
    assert round_["steps"] == 8 and round_["first_loss"] > round_["last_loss"]
    assert summary["settings"]["packing"] is True and summary["settings"]["bf16"] is True


def test_logits_at_learnt_positions_train_as_full_logits_do(tmp_path, tiny_model_dir, monkeypatch):
    """The Trainer with `labelled_loss` and batches that keep learnt logits only logs the same losses, step for
    step, as with the model's own loss over full logits (same seed, same batches)."""
    import engine.finetune.train as train

    monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "cache"))
    logged = {}
    for kept in (True, False):
        monkeypatch.setattr(train, "keeps_logits_by_index", lambda model, kept=kept: kept)
        monkeypatch.setattr("engine.finetune.batches.keeps_logits_by_index", lambda model, kept=kept: kept)
        summary = finetune(progress=lambda m: None, **small(tmp_path / str(kept), tiny_model_dir))
        history = json.loads((tmp_path / str(kept) / "ft" / "round-1" / "training_log.json").read_text())
        logged[kept] = [h["loss"] for h in history if "loss" in h]
        assert summary["rounds"][0]["steps"] == 8
    assert len(logged[True]) >= 2 and logged[True] == pytest.approx(logged[False], rel=1e-4)


def test_bf16_on_a_gpu_without_it_is_one_clear_error(monkeypatch):
    import torch

    from engine.finetune.train import refuse_unsupported_bf16

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla T4")
    with pytest.raises(EngineError, match=r"^--bf16: this GPU \(Tesla T4\) has no bf16: leave --bf16 out"):
        refuse_unsupported_bf16(True)
    refuse_unsupported_bf16(False)  # fp32 asks nothing of the GPU
