"""Gold writers for chains of your own: `finetune --chain FILE.py:NAME --source gold` trains on the chain's
exact prompts with what a perfect model writes at each model step, as it does for the built-in strategies."""

import pytest
from transformers import AutoTokenizer

from engine.chains.custom import load_chain
from engine.chains.scheduler import first_request
from engine.chains.strategies import initial_state
from engine.backends.formatting import prompt_text
from engine.cli.main import main
from engine.errors import EngineError
from engine.finetune.gold import chain_writer
from engine.finetune.traces import gold_pairs
from engine.synthetic import arithmetic
from engine.tasks.spec import load_spec

CHAIN = '''from engine import SamplingSettings, Sequence, Step


def work_then_answer(spec):
    return Sequence(Step("working", "working.jinja", SamplingSettings(max_tokens=64)),
                    Step("answer", "answer.jinja", SamplingSettings(max_tokens=16), parse=spec.parser))
'''
WRITER = '''

def gold(step, example, state):
    if step == "working":
        return "\\n".join(example.gold_steps)
    return f"The answer is {ANSWER(example)}."


ANSWER = lambda example: example.gold
'''


@pytest.fixture
def chain_file(tmp_path):
    def write(text: str) -> str:
        (tmp_path / "mine.py").write_text(text)
        (tmp_path / "working.jinja").write_text('{{ role("user") }}{{ question }}\nWork it out step by step.\n')
        (tmp_path / "answer.jinja").write_text('{{ role("user") }}{{ question }}\n{{ working }}\nThe answer is?\n')
        return f"{tmp_path / 'mine.py'}:work_then_answer"
    return write


def pairs_of(reference: str, tokenizer, count: int = 3):
    spec, _ = load_spec("arithmetic")
    chain = load_chain(reference, spec)
    items = arithmetic.generate(count, 2, seed=4)
    states = [initial_state(e, spec, []) for e in items]
    return chain, items, states, gold_pairs(chain, reference, items, states, tokenizer, chain_writer(chain, reference))


def test_the_chain_files_writer_gives_each_steps_exact_prompt_and_gold(chain_file, tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    chain, items, states, pairs = pairs_of(chain_file(CHAIN + WRITER), tokenizer)
    assert [(p.item, p.step) for p in pairs] == [(e.id, s) for e in items for s in ("working", "answer")]
    for item, state, (working, answer) in zip(items, states, zip(pairs[::2], pairs[1::2])):
        assert working.prompt == prompt_text(first_request(chain, state), tokenizer)  # the eval's own prompt
        assert working.completion == "\n".join(item.gold_steps) and answer.completion == f"The answer is {item.gold}."
        assert working.completion in answer.prompt  # the answer step saw the gold working, as at evaluation


def test_a_steps_own_gold_serves_without_a_file_writer(chain_file, tiny_model_dir):
    own = CHAIN.replace('Step("working", "working.jinja", SamplingSettings(max_tokens=64))',
                        'Step("working", "working.jinja", SamplingSettings(max_tokens=64), '
                        'gold=lambda example, state: " ".join(example.gold_steps))')
    own = own.replace("parse=spec.parser)", "parse=spec.parser, gold=lambda example, state: f'{example.gold}')")
    _, items, _, pairs = pairs_of(chain_file(own), AutoTokenizer.from_pretrained(tiny_model_dir), count=2)
    assert [p.completion for p in pairs] == [x for e in items for x in (" ".join(e.gold_steps), e.gold)]


def test_a_model_step_without_a_writer_is_one_line_naming_it(chain_file):
    reference = chain_file(CHAIN)
    chain = load_chain(reference, load_spec("arithmetic")[0])
    with pytest.raises(EngineError, match=r"model step 'working' has no gold writer: define `gold\(step_name"):
        chain_writer(chain, reference)


def test_a_writer_that_ends_at_a_wrong_answer_is_reported_broken(chain_file, tiny_model_dir):
    reference = chain_file(CHAIN + WRITER.replace("ANSWER = lambda example: example.gold",
                                                  "ANSWER = lambda example: int(example.gold) + 1"))
    with pytest.raises(EngineError, match="not its gold .*: fix the chain file's gold writer"):
        pairs_of(reference, AutoTokenizer.from_pretrained(tiny_model_dir))


def test_a_writer_that_fails_is_one_line(chain_file, tiny_model_dir):
    reference = chain_file(CHAIN + WRITER.replace('"\\n".join(example.gold_steps)', "example.no_such_field"))
    with pytest.raises(EngineError, match="the gold writer failed at step 'working' of item arith-d2-s4-0: "
                                          "AttributeError"):
        pairs_of(reference, AutoTokenizer.from_pretrained(tiny_model_dir))


def test_finetune_refuses_a_chain_without_a_writer_before_any_model_loads(chain_file, tmp_path, capsys):
    argv = ["finetune", "--task", "arithmetic", "--chain", chain_file(CHAIN), "--out", str(tmp_path / "ft"),
            "--model", str(tmp_path / "no-such-model")]  # a model it would fail to find, were it asked first
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "model step 'working' has no gold writer" in err and "\n" not in err
    assert not (tmp_path / "ft").exists()
