"""Training step time of the ways `finetune` can batch: padded, grouped by length, packed, packed with bf16, and
packed with bf16 computing logits only where a token is learnt.

The pairs are the four-family BIG-Bench-Hard mixture's own (the same tasks, items and chains `finetune` builds
for the shipped adapter's command), tokenized as `finetune` tokenizes them. One LoRA model of the default model
takes `--steps` optimizer steps per way and repetition, in rotating order (these machines are noisy):
- padded: random batches of 8 padded to their longest pair (`--no-packing`, what runs did before packing);
- grouped: the batches transformers' LengthGroupedSampler draws (`--group-by-length --no-packing`), mostly of
  one family and little padding;
- packed: the padded way's batches, each in one row without padding (the default now);
- packed+bf16: the same under bf16 autocast (`--bf16`);
- packed+bf16+kept: the same, the model computing logits only at positions whose next token is learnt (the
  default now, wherever the model takes `logits_to_keep`).
First one matrix product's GFLOP/s in fp32 and bf16 (bf16 pays only where the CPU has it natively). Then
prints seconds per step and real (unpadded) tokens per second of each, with each way's ratio to padded, and
the largest difference between the padded loss of the same batches and the packed one and the kept one; writes
JSON.

    python eval/bench_train.py [--steps 5] [--repeat 2] [--out eval/results/bench]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

TASKS = "bbh-multistep_arithmetic_two,bbh-boolean_expressions,bbh-navigate,bbh-tracking_shuffled_objects_three_objects"
TRAIN_TASKS = "arithmetic-two-gen,boolean-gen,navigate-gen,tracking-gen"
WAYS = ("padded", "grouped", "packed", "packed+bf16", "packed+bf16+kept")


def mixture_rows(train_items: int, tokenizer) -> list[dict]:
    """The mixture's tokenized training pairs, built as `finetune --task ... --train-task ...` builds them."""
    from engine.finetune import mixture
    from engine.finetune.settings import FinetuneSettings
    from engine.finetune.train import tokenize_pairs

    settings = FinetuneSettings(task=TASKS, train_task=TRAIN_TASKS, train_items=train_items, val_items=1,
                                test_items=1, out="unused")
    pairs = mixture.mixed_pairs(mixture.members(settings, train_items), tokenizer, progress=print)
    return tokenize_pairs(pairs, tokenizer)


def batches_of(rows: list[dict], way: str, count: int, size: int, seed: int) -> list[list[dict]]:
    """`count` batches as the Trainer would draw them for this way (random, or the library's length grouping)."""
    if way == "grouped":
        import torch
        from transformers.trainer_pt_utils import LengthGroupedSampler

        order = list(LengthGroupedSampler(size, lengths=[len(r["input_ids"]) for r in rows],
                                          generator=torch.Generator().manual_seed(seed)))
    else:
        order = random.Random(seed).sample(range(len(rows)), len(rows))
    return [[rows[i] for i in order[b * size:(b + 1) * size]] for b in range(count)]


def time_steps(model, optimizer, batches, collate, bf16: bool) -> dict:
    """Seconds of each optimizer step (forward, backward, clip, AdamW) and the real tokens it trained on."""
    import torch

    seconds, tokens, losses = [], 0, []
    for batch in batches:
        inputs = collate([dict(r) for r in batch])
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_of(model, inputs)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        seconds.append(time.perf_counter() - started)
        tokens += sum(len(r["input_ids"]) for r in batch)
        losses.append(loss.item())
    return {"seconds": seconds, "tokens": tokens, "losses": losses}


def loss_of(model, inputs):
    """The model's own loss, or (a batch that keeps logits at learnt positions) `finetune`'s labelled loss."""
    from engine.finetune.batches import labelled_loss

    if "logits_to_keep" not in inputs:
        return model(**inputs).loss
    labels = inputs.pop("labels")
    return labelled_loss(model(**inputs), labels)


def matmul_gflops(dtype_name: str, repeat: int = 50) -> float:
    """GFLOP/s of one 1024x576 by 576x1536 product (a batch of tokens through an MLP projection of the model)."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(1024, 576, dtype=dtype), torch.randn(576, 1536, dtype=dtype)
    for _ in range(3):
        a @ b
    started = time.perf_counter()
    for _ in range(repeat):
        a @ b
    return round(2 * 1024 * 576 * 1536 * repeat / (time.perf_counter() - started) / 1e9, 1)


def main() -> None:
    import torch

    from engine.environment import describe
    from engine.finetune.batches import packed_collator, padded_collator, with_labelled_logits
    from engine.finetune.train import load_for_training
    from engine.models import resolve_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per way and repetition (default 5)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--train-items", type=int, default=60, help="items per family (default 60)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", default="eval/results/bench")
    args = parser.parse_args()
    gflops = {name: matmul_gflops(name) for name in ("float32", "bfloat16")}
    print(f"one matrix product: {gflops['float32']} GFLOP/s in fp32, {gflops['bfloat16']} in bf16", flush=True)
    model, tokenizer = load_for_training(resolve_model(None), "lora", 16, 0)
    model.train()
    rows = mixture_rows(args.train_items, tokenizer)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    padded, packed = padded_collator(tokenizer), packed_collator()
    kept = with_labelled_logits(packed)
    collate = {"padded": padded, "grouped": padded, "packed": packed, "packed+bf16": packed, "packed+bf16+kept": kept}
    times: dict[str, list[float]] = {w: [] for w in WAYS}
    tokens = {w: 0 for w in WAYS}
    loss_gap = {"packed": 0.0, "kept": 0.0}
    for repetition in range(args.repeat):
        order = WAYS[repetition % len(WAYS):] + WAYS[:repetition % len(WAYS)]
        for way in order:
            batches = batches_of(rows, way, args.steps + 1, args.batch_size, seed=repetition)
            time_steps(model, optimizer, batches[:1], collate[way], "bf16" in way)  # warm-up, not counted
            result = time_steps(model, optimizer, batches[1:], collate[way], "bf16" in way)
            times[way] += result["seconds"]
            tokens[way] += result["tokens"]
            print(f"repetition {repetition} {way:12s}: {statistics.mean(result['seconds']):.2f} s a step", flush=True)
        with torch.no_grad():  # the same batches padded and packed: the same loss
            for batch in batches_of(rows, "padded", 2, args.batch_size, seed=100 + repetition):
                a = model(**padded([dict(r) for r in batch])).loss.item()
                b = model(**packed([dict(r) for r in batch])).loss.item()
                c = loss_of(model, kept([dict(r) for r in batch])).item()
                loss_gap = {"packed": max(loss_gap["packed"], abs(a - b)), "kept": max(loss_gap["kept"], abs(a - c))}
    figures = {w: {"seconds_per_step": round(statistics.mean(times[w]), 3),
                   "tokens_per_second": round(tokens[w] / sum(times[w]), 1),
                   "steps": len(times[w])} for w in WAYS}
    for w in WAYS:
        figures[w]["speed_vs_padded"] = round(figures["padded"]["seconds_per_step"] / figures[w]["seconds_per_step"], 2)
        print(f"{w:12s}: {figures[w]['seconds_per_step']:6.2f} s a step, {figures[w]['tokens_per_second']:7.1f} "
              f"real tokens/s, {figures[w]['speed_vs_padded']:.2f}x padded")
    print(f"largest loss difference from padded on the same batches: packed {loss_gap['packed']:.2e}, "
          f"kept {loss_gap['kept']:.2e}")
    result = {"command": "python eval/bench_train.py " + " ".join(sys.argv[1:]), "environment": describe("float32"),
              "pairs": len(rows), "mean_pair_tokens": round(statistics.mean(len(r["input_ids"]) for r in rows), 1),
              "batch_size": args.batch_size, "matmul_gflops": gflops, "ways": figures, "largest_loss_difference": loss_gap,
              "labelled_share": round(sum(sum(x != -100 for x in r["labels"]) for r in rows)
                                      / sum(len(r["labels"]) for r in rows), 3)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train-steps.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {out / 'train-steps.json'}")


if __name__ == "__main__":
    main()
