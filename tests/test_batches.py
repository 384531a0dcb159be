"""Packed training batches: the same loss and gradients as padded ones, and a model that mixes pairs is caught."""

import pytest

from engine.finetune.batches import (IGNORE, keeps_logits_by_index, labelled_loss, learnt_positions, packed_collator,
                                     packing_is_exact, padded_collator, training_collator, with_labelled_logits)

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
    assert "logits_to_keep" not in collate(rows_of([5, 2]))  # its forward cannot keep logits by index
    assert len(said) == 1 and "padded instead" in said[0] and "IgnoresPositions" in said[0]
    assert training_collator(model, tokenizer, packing=False)(rows_of([5, 2]))["input_ids"].shape == (2, 5)
    assert training_collator(model, tokenizer, packing=True)(rows_of([5, 2]))["input_ids"].shape == (1, 7)


def test_learnt_positions_are_those_whose_next_token_is_labelled():
    labels = torch.tensor([[IGNORE, IGNORE, 5, 6, IGNORE, IGNORE, 8],
                           [IGNORE, 3, IGNORE, IGNORE, IGNORE, IGNORE, IGNORE]])
    assert learnt_positions(labels).tolist() == [0, 1, 2, 5]  # row 2 learns token 1 from position 0


@pytest.mark.parametrize("packing", [True, False])
def test_logits_at_learnt_positions_give_the_models_own_loss_and_gradients(tiny, packing):
    model, tokenizer = tiny
    rows = rows_of([9, 4, 13, 6], prompt=3)
    collate = training_collator(model, tokenizer, packing=packing)
    batch = collate([dict(r) for r in rows])
    kept = batch.pop("logits_to_keep")
    assert kept.numel() == sum(len(r["input_ids"]) - 3 for r in rows) if packing else kept.numel() == 13 - 3
    results = []
    for labelled in (False, True):
        model.zero_grad()
        if labelled:
            labels = batch["labels"]
            outputs = model(**{k: v for k, v in batch.items() if k != "labels"}, logits_to_keep=kept)
            assert outputs.logits.shape[1] == kept.numel()
            loss = labelled_loss(outputs, labels, num_items_in_batch=(labels[:, 1:] != IGNORE).sum())
            assert labelled_loss(outputs, labels).item() == pytest.approx(loss.item(), rel=1e-6)  # the mean
        else:
            loss = model(**batch).loss
        loss.backward()
        results.append((loss.item(), model.lm_head.weight.grad.clone(),
                        model.model.layers[0].self_attn.q_proj.weight.grad.clone()))
    (full, full_head, full_q), (kept_loss, kept_head, kept_q) = results
    assert kept_loss == pytest.approx(full, rel=1e-5)
    assert torch.allclose(kept_head, full_head, atol=1e-6, rtol=1e-4)
    assert torch.allclose(kept_q, full_q, atol=1e-6, rtol=1e-4) and full_q.abs().sum() > 0


def test_a_lora_model_keeps_logits_by_index_through_peft(tiny_model_dir):
    from engine.finetune.train import load_for_training

    model, tokenizer = load_for_training(tiny_model_dir, "lora", 4, 0)
    assert keeps_logits_by_index(model)
    batch = with_labelled_logits(packed_collator())(rows_of([6, 5]))
    labels = batch.pop("labels")
    outputs = model(**batch)
    assert outputs.logits.shape[1] == (6 - 3) + (5 - 3) and labelled_loss(outputs, labels).isfinite()
