"""How tokenized training pairs become batches: packed into one row without padding, or padded to the longest.

Padding costs what it pads: a random batch of a mixture (short arithmetic steps beside long tracking steps) is
padded to its longest pair, and on a CPU every pad token costs as much as a real one. Packing concatenates the
batch's pairs into one row and restarts `position_ids` at each pair (transformers' DataCollatorWithFlattening);
the model's mask builder sees the restarts and lets each token attend only within its own pair, so a packed
batch gives the same loss and gradients as the padded one (the same pairs, the same seed) with no pad tokens.
`--group-by-length` reaches less padding another way, by batching pairs of one length, which in a mixture
means batches of one family; packing keeps batches random.

Logits are computed only where a token is learnt. Prompt tokens are labelled IGNORE, and in a chain's steps
the prompt (the question and the chain's state so far) is most of each pair, yet the model would compute the
vocabulary-wide logits (576 x 49,152 products a token for the default model, and a float32 row of 49,152 for the
loss) at every position. `with_labelled_logits` asks the model for logits at the positions whose next token is
learnt only (transformers' `logits_to_keep` as an index tensor) and `labelled_loss` scores exactly those: the
same sum over the same tokens, divided by the same count, so the same loss and gradients.

Two things are checked rather than trusted. The model must not build a key/value cache while training (a cache
makes the mask builder skip the packed-sequence check), so every packed batch asks for none. And the model must
honour the restarts: `packing_is_exact` runs two short sequences packed and apart and compares the logits, since
an architecture whose mask ignores `position_ids` would otherwise let pairs attend to each other silently.
"""

from __future__ import annotations

IGNORE = -100


def padded_collator(tokenizer):
    """Pad each batch on the right to its longest pair (labels padded with IGNORE)."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE, padding=True)


def packed_collator():
    """Concatenate each batch's pairs into one row; positions restart at every pair, no padding, no cache."""
    from transformers import DataCollatorWithFlattening

    flatten = DataCollatorWithFlattening(separator_id=IGNORE)

    def collate(rows: list[dict]) -> dict:
        batch = flatten([{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows])
        batch["use_cache"] = False  # with a cache the mask builder does not look for packed pairs
        return batch

    return collate


def packing_is_exact(model, tolerance: float = 1e-3) -> bool:
    """Whether `model` keeps packed pairs apart: logits of two short sequences packed in one row equal their
    logits run one by one (up to `tolerance`, relative to the logits' scale)."""
    import torch

    vocab = model.get_input_embeddings().num_embeddings
    first = torch.arange(7, 7 + 9) % vocab
    second = torch.arange(40, 40 + 6) % vocab
    packed = torch.cat([first, second])[None]
    positions = torch.cat([torch.arange(len(first)), torch.arange(len(second))])[None]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            together = model(input_ids=packed, position_ids=positions, use_cache=False).logits[0].float()
            apart = torch.cat([model(input_ids=s[None], use_cache=False).logits[0] for s in (first, second)]).float()
    finally:
        model.train(was_training)
    scale = apart.abs().max().clamp(min=1.0)
    return bool(((together - apart).abs().max() / scale) <= tolerance)


def training_collator(model, tokenizer, packing: bool, progress=print):
    """The packed collator where the model honours packing, else the padded one (said once, in a line); each
    batch asks for logits at learnt positions only where the model can give them (see `keeps_logits_by_index`)."""
    if packing and packing_is_exact(model):
        collate = packed_collator()
    else:
        if packing:
            progress(f"{type(model).__name__} lets packed pairs attend to each other: batches are padded instead")
        collate = padded_collator(tokenizer)
    return with_labelled_logits(collate) if keeps_logits_by_index(model) else collate


def _following(labels):
    """Each position's next label (IGNORE after the last): the token that position's logits predict."""
    import torch

    return torch.nn.functional.pad(labels, (0, 1), value=IGNORE)[:, 1:]


def learnt_positions(labels):
    """The positions (columns, over every row of the batch) whose next token is learnt: where logits count."""
    return (_following(labels) != IGNORE).any(dim=0).nonzero().squeeze(-1)


def with_labelled_logits(collate):
    """`collate`, each batch also asking the model for logits at its learnt positions only."""

    def collate_labelled(rows: list[dict]) -> dict:
        batch = collate(rows)
        batch["logits_to_keep"] = learnt_positions(batch["labels"])
        return batch

    return collate_labelled


def labelled_loss(outputs, labels, num_items_in_batch=None):
    """Cross-entropy of logits kept at `learnt_positions(labels)` against the tokens that follow them: the sum
    over learnt tokens divided by `num_items_in_batch` (the Trainer's count), else their mean; what the model's
    own loss gives from all logits. The Trainer calls it as its `compute_loss_func`."""
    import torch

    targets = _following(labels)[:, learnt_positions(labels)].to(outputs.logits.device)
    logits = outputs.logits.float()
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (targets != IGNORE).sum()
    return loss / count


def keeps_logits_by_index(model) -> bool:
    """Whether the model's forward takes `logits_to_keep` (Llama, Qwen, Mistral and most causal LMs of
    transformers do); one that does not gets the full logits and computes its own loss as before."""
    import inspect

    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(inner.forward).parameters
