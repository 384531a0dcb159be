"""How tokenized training pairs become batches: packed into one row without padding, or padded to the longest.

Padding costs what it pads: a random batch of a mixture (short arithmetic steps beside long tracking steps) is
padded to its longest pair, and on a CPU every pad token costs as much as a real one. Packing concatenates the
batch's pairs into one row and restarts `position_ids` at each pair (transformers' DataCollatorWithFlattening);
the model's mask builder sees the restarts and lets each token attend only within its own pair, so a packed
batch gives the same loss and gradients as the padded one (the same pairs, the same seed) with no pad tokens.
`--group-by-length` reaches less padding another way, by batching pairs of one length, which in a mixture
means batches of one family; packing keeps batches random.

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
    """The packed collator where the model honours packing, else the padded one (said once, in a line)."""
    if packing and packing_is_exact(model):
        return packed_collator()
    if packing:
        progress(f"{type(model).__name__} lets packed pairs attend to each other: batches are padded instead")
    return padded_collator(tokenizer)
