"""Packed training batches: the same loss and gradients as padded ones, and a model that mixes pairs is caught."""

import pytest

from engine.finetune.batches import IGNORE, packed_collator, packing_is_exact, padded_collator, training_collator

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    return model, tokenizer


def rows_of(lengths, prompt=3):
    rows = []
    for n, length in enumerate(lengths):
        ids = [(7 * n + 3 * i) % 400 + 10 for i in range(length)]
        rows.append({"input_ids": ids, "attention_mask": [1] * length, "labels": [IGNORE] * prompt + ids[prompt:]})
    return rows


def test_a_packed_batch_is_one_row_whose_positions_restart_at_every_pair(tiny):
    _, tokenizer = tiny
    batch = packed_collator()(rows_of([5, 2, 4]))
    assert batch["input_ids"].shape == (1, 11) and batch["use_cache"] is False
    assert batch["position_ids"][0].tolist() == [0, 1, 2, 3, 4, 0, 1, 0, 1, 2, 3]
    labels = batch["labels"][0].tolist()
    assert [labels[0], labels[5], labels[7]] == [IGNORE] * 3  # no pair learns its first token from the pair before
    assert labels[3:5] == rows_of([5])[0]["input_ids"][3:5]


def test_packed_and_padded_batches_give_the_same_loss_and_gradients(tiny):
    model, tokenizer = tiny
    rows = rows_of([9, 4, 13, 6], prompt=2)
    results = []
    for batch in (padded_collator(tokenizer)([dict(r) for r in rows]), packed_collator()([dict(r) for r in rows])):
        model.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        results.append((loss.item(), model.lm_head.weight.grad.clone()))
    (padded_loss, padded_grad), (packed_loss, packed_grad) = results
    assert packed_loss == pytest.approx(padded_loss, rel=1e-5)
    assert torch.allclose(packed_grad, padded_grad, atol=1e-6, rtol=1e-4)
    assert padded_grad.abs().sum() > 0


class IgnoresPositions(torch.nn.Module):
    """A model whose mask ignores position restarts: packed pairs would attend to each other."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def forward(self, input_ids, position_ids=None, use_cache=False):
        return self.inner(input_ids=input_ids, use_cache=use_cache)


def test_a_model_that_lets_packed_pairs_meet_gets_padded_batches(tiny):
    model, tokenizer = tiny
    assert packing_is_exact(model)
    said = []
    leaky = IgnoresPositions(model)
    assert not packing_is_exact(leaky)
    collate = training_collator(leaky, tokenizer, packing=True, progress=said.append)
    assert collate(rows_of([5, 2]))["input_ids"].shape == (2, 5)  # padded, one pair a row
    assert len(said) == 1 and "padded instead" in said[0] and "IgnoresPositions" in said[0]
    assert training_collator(model, tokenizer, packing=False)(rows_of([5, 2]))["input_ids"].shape == (2, 5)
    assert training_collator(model, tokenizer, packing=True)(rows_of([5, 2]))["input_ids"].shape == (1, 7)
