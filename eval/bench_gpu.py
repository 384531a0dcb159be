"""Engine overhead and decode throughput of the hf backend on a GPU, against the GPU's memory-bandwidth limit.

The model is SmolLM2-135M's architecture with random weights (speed does not depend on the values), built in
process, so only this repository has to reach the GPU machine: no checkpoint, no tokenizer, no vLLM. Prompts
are random token ids written as words of a word-level vocabulary ("t17 t4031 ..."), one word per id, so the
engine's text prompts become exactly the ids the raw model gets. EOS is disabled: every sequence decodes the
full length.

1. Overhead: the engine's `HFBackend.generate` on greedy requests against raw `model.generate` on the same ids
   in the same batches; ratio engine/raw (target <= 1.05), and whether both produced the same ids.
2. Sweep: the engine's decode tokens/s at each batch size (a forward hook splits each call at the end of its
   prefill), and the memory bandwidth that implies: each decode step reads the weights and the KV cache held so
   far once. Real traffic is higher (transformers' cache also copies), so this says how far from the bandwidth
   limit decoding runs; at small batches the limit is kernel launches, not memory.

Example runs:
    python eval/bench_gpu.py --device cpu --tiny           # 2-layer model, seconds: checks the script itself
    python3 eval/bench_gpu.py --out $OUT/gpu-h200.json    # on the GPU machine: bf16, batches 1..256

The engine needs pydantic, which the GPU machine's image lacks: carry the wheels of pydantic, pydantic-core,
annotated-types, typing-inspection and typing-extensions there (the device README says how).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # engine is not installed on the GPU machine

PAD = 0
"""Token id used for padding; its embedding row is zeroed, so its (tied) logit is 0 and greedy never picks it."""

SMOLLM2_135M = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, head_dim=64, max_position_embeddings=8192,
                    rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True)
"""From the converted checkpoint's config.json (`resolve_model('smollm2-135m')`)."""

TINY = dict(SMOLLM2_135M, vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512)

PRESETS = {  # batches of the sweep, prompt and new tokens, overhead requests and their batch size
    "full": dict(batches=[1, 8, 32, 128, 256], prompt_tokens=128, new_tokens=128, requests=64, batch_size=32),
    "tiny": dict(batches=[1, 4], prompt_tokens=16, new_tokens=8, requests=8, batch_size=4),
}

PEAK_GBPS = (("B200", 8000), ("H200", 4800), ("H100 NVL", 3900), ("H100 PCIe", 2000), ("H100", 3350),
             ("A100 80GB PCIe", 1935), ("A100-SXM4-80GB", 2039), ("A100", 1555), ("L40S", 864), ("L4", 300))
"""Datasheet HBM/GDDR bandwidth in GB/s, matched by substring of the device name, first match wins."""


def peak_gbps(device_name: str) -> float | None:
    """The datasheet bandwidth of a GPU by name; None when unknown (then no fraction of peak is reported).

    >>> peak_gbps("NVIDIA H200"), peak_gbps("NVIDIA H100 PCIe"), peak_gbps("cpu")
    (4800, 2000, None)
    """
    return next((gbps for key, gbps in PEAK_GBPS if key in device_name), None)


def choose_device(requested: str | None, has_cuda: bool) -> str:
    """The device asked for, else cuda; without CUDA a one-line exit, since a CPU is not what this measures.

    >>> choose_device(None, True), choose_device("cpu", False)
    ('cuda', 'cpu')
    """
    device = requested or "cuda"
    if device.startswith("cuda") and not has_cuda:
        raise SystemExit("no CUDA GPU here: run this on a GPU machine, or check it with --device cpu --tiny")
    return device


def spread(values: list[float]) -> dict:
    """Median, min and max: one noisy repetition should neither hide nor dominate."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def build_model(config_values: dict, device: str, dtype, seed: int = 0):
    """A random-weight Llama with EOS disabled, and a word-level tokenizer whose word `t<i>` is id i."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    config = LlamaConfig(**config_values, pad_token_id=PAD, bos_token_id=None, eos_token_id=None)
    torch.manual_seed(seed)
    with torch.device(device):
        lm = LlamaForCausalLM(config)
    lm = lm.to(dtype).eval()
    with torch.no_grad():
        lm.get_input_embeddings().weight[PAD].zero_()
    lm.generation_config.eos_token_id = None
    lm.generation_config.pad_token_id = PAD
    vocab = {"<pad>": PAD, **{f"t{i}": i for i in range(1, config.vocab_size)}}
    words = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return lm, PreTrainedTokenizerFast(tokenizer_object=words, pad_token="<pad>")


def random_prompts(count: int, length: int, vocab_size: int, seed: int) -> list[list[int]]:
    """Random non-pad token ids: all prompts the same length, so batches need no padding."""
    rng = random.Random(seed)
    return [[rng.randrange(1, vocab_size) for _ in range(length)] for _ in range(count)]


def engine_requests(prompts: list[list[int]], new_tokens: int):
    from engine.generation import GenerationRequest
    from engine.sampling import SamplingSettings

    sampling = SamplingSettings(max_tokens=new_tokens)  # temperature 0: greedy
    return [GenerationRequest(prompt=" ".join(f"t{i}" for i in ids), sampling=sampling) for ids in prompts]


def raw_generate(lm, prompts: list[list[int]], batch_size: int, new_tokens: int) -> list[list[int]]:
    """What the engine does with the model, minus the engine: same batches, same greedy settings."""
    import torch

    device, out = next(lm.parameters()).device, []
    for start in range(0, len(prompts), batch_size):
        ids = torch.tensor(prompts[start:start + batch_size], device=device)
        with torch.inference_mode():
            output = lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), pad_token_id=PAD,
                                 do_sample=False, max_new_tokens=new_tokens)
        out.extend(output[:, ids.shape[1]:].tolist())
    return out


def timed(fn, lm, repeat: int, device: str):
    """(seconds, prefill seconds) of each of `repeat` calls after one untimed warm-up, and the last result.

    A forward hook marks the end of a call's first forward pass, the prefill (all prompt tokens at once), so
    decode time comes from the same run, not from the difference of two noisy runs.
    """
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    marks: list[float] = []

    def mark(module, args, output):
        if not marks:
            sync()
            marks.append(time.perf_counter())

    handle = lm.register_forward_hook(mark)
    try:
        fn()
        runs = []
        for _ in range(repeat):
            marks.clear()
            sync()
            start = time.perf_counter()
            result = fn()
            sync()
            runs.append((time.perf_counter() - start, marks[0] - start))
    finally:
        handle.remove()
    return runs, result


def overhead(lm, tokenizer, preset: dict, repeat: int, device: str, vocab_size: int) -> dict:
    """Engine against raw generate on the same ids; identical ids show both did the same work."""
    from engine.backends.hf import HFBackend

    prompts = random_prompts(preset["requests"], preset["prompt_tokens"], vocab_size, seed=1)
    backend = HFBackend.from_loaded(lm, tokenizer, batch_size=preset["batch_size"])
    requests = engine_requests(prompts, preset["new_tokens"])
    engine_runs, results = timed(lambda: backend.generate(requests), lm, repeat, device)
    raw_runs, raw_ids = timed(lambda: raw_generate(lm, prompts, preset["batch_size"], preset["new_tokens"]), lm, repeat,
                              device)
    engine_s, raw_s = [run[0] for run in engine_runs], [run[0] for run in raw_runs]
    engine_ids = [tokenizer(r.text, add_special_tokens=False)["input_ids"] for r in results]
    return {"requests": len(prompts), "batch_size": preset["batch_size"], "prompt_tokens": preset["prompt_tokens"],
            "new_tokens": preset["new_tokens"], "engine_seconds": spread(engine_s), "raw_seconds": spread(raw_s),
            "ratio": statistics.median(engine_s) / statistics.median(raw_s),
            "identical_sequences": sum(a == b for a, b in zip(engine_ids, raw_ids)),
            "full_length_sequences": sum(len(ids) == preset["new_tokens"] for ids in raw_ids),
            "engine_ids": engine_ids, "raw_ids": raw_ids}


def decode_bytes(config: dict, weight_bytes: int, dtype_bytes: int, batch: int, prompt: int, new: int) -> int:
    """Bytes a decode-only run must read: weights once per step, plus every cached K and V at each step.

    Decode step s (s = 1 .. new-1) attends over prompt + s cached tokens in each of `batch` sequences.

    >>> decode_bytes(dict(num_hidden_layers=1, num_key_value_heads=1, head_dim=1), 100, 2, 1, 2, 3)
    228
    """
    per_token = 2 * config["num_hidden_layers"] * config["num_key_value_heads"] * config["head_dim"] * dtype_bytes
    cached = sum(prompt + s for s in range(1, new))
    return (new - 1) * weight_bytes + batch * cached * per_token


def sweep_row(lm, tokenizer, config: dict, batch: int, preset: dict, repeat: int, device: str) -> dict:
    """Decode tokens/s of the engine at one batch size: one generate call, timed from the end of its prefill."""
    from engine.backends.hf import HFBackend

    prompt, new = preset["prompt_tokens"], preset["new_tokens"]
    backend = HFBackend.from_loaded(lm, tokenizer, batch_size=batch)
    requests = engine_requests(random_prompts(batch, prompt, config["vocab_size"], seed=2 + batch), new)
    runs, results = timed(lambda: backend.generate(requests), lm, repeat, device)
    prefill_s, decode_s = [run[1] for run in runs], [run[0] - run[1] for run in runs]
    decoded = sum(r.completion_tokens for r in results) - batch  # the first token of each comes from prefill
    params = sum(p.numel() for p in lm.parameters())  # tied embeddings counted once: the lm_head reads them
    dtype_bytes = next(lm.parameters()).element_size()
    nbytes = decode_bytes(config, params * dtype_bytes, dtype_bytes, batch, prompt, new)
    return {"batch": batch, "prefill_seconds": spread(prefill_s), "decode_seconds": spread(decode_s),
            "decoded_tokens": decoded, "decode_tokens_per_second": spread([decoded / s for s in decode_s]),
            "decode_bytes": nbytes, "achieved_gbps": nbytes / statistics.median(decode_s) / 1e9}


def report(result: dict) -> None:
    """Print the JSON as a table."""
    o, peak = result["overhead"], result["peak_gbps"]
    print(f"{result['device_name']} ({result['dtype']}), SmolLM2-135M config{' (tiny)' if result['tiny'] else ''}, "
          f"random weights, {result['params'] / 1e6:.1f}M params, repeat {result['repeat']}")
    print(f"engine overhead: {o['requests']} requests, batch {o['batch_size']}, {o['prompt_tokens']}+{o['new_tokens']} "
          f"tokens: engine {o['engine_seconds']['median']:.3f} s, raw generate {o['raw_seconds']['median']:.3f} s, "
          f"ratio {o['ratio']:.3f} (target <= 1.05); identical ids {o['identical_sequences']}/{o['requests']}")
    print(f"{'batch':>5} {'prefill s':>9} {'decode s':>9} {'decode tok/s':>12} {'[min - max]':>19} {'GB/s':>8} "
          f"{'% of peak' if peak else ''}")
    for row in result["sweep"]:
        t = row["decode_tokens_per_second"]
        fraction = f"{100 * row['achieved_gbps'] / peak:8.2f}%" if peak else ""
        print(f"{row['batch']:5d} {row['prefill_seconds']['median']:9.3f} {row['decode_seconds']['median']:9.3f} "
              f"{t['median']:12.1f} [{t['min']:8.1f} - {t['max']:8.1f}] {row['achieved_gbps']:8.1f} {fraction}")
    print(f"peak bandwidth: {f'{peak:.0f} GB/s' if peak else 'unknown for this device (pass --peak-gbps)'}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", help="cuda (default where there is one) or cpu")
    parser.add_argument("--tiny", action="store_true", help="2-layer model, tiny batches and lengths: a quick check")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions of each measurement (default 3)")
    parser.add_argument("--batches", help="comma-separated batch sizes of the sweep (default 1,8,32,128,256)")
    parser.add_argument("--peak-gbps", type=float, help="the device's memory bandwidth, if the table lacks it")
    parser.add_argument("--out", help="JSON path (default eval/results/bench/gpu-<device>.json)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    device = choose_device(args.device, torch.cuda.is_available())
    preset = dict(PRESETS["tiny" if args.tiny else "full"])
    if args.batches:
        preset["batches"] = [int(b) for b in args.batches.split(",")]
    config = TINY if args.tiny else SMOLLM2_135M
    cuda = device.startswith("cuda")
    if args.tiny and not cuda:
        torch.set_num_threads(1)  # a 64-wide model gains nothing from threads, which thrash on a busy machine
    name = torch.cuda.get_device_name(device) if cuda else "cpu"
    dtype = torch.bfloat16 if cuda else torch.float32  # as HFBackend's "auto": no bf16 speed-up on CPUs
    lm, tokenizer = build_model(config, device, dtype)
    result = {"device_name": name, "device": device, "dtype": str(dtype).removeprefix("torch."), "tiny": args.tiny,
              "config": config, "params": sum(p.numel() for p in lm.parameters()), "repeat": args.repeat,
              "peak_gbps": args.peak_gbps or (peak_gbps(name) if cuda else None), "torch": torch.__version__,
              "transformers": transformers.__version__, "preset": preset}
    result["overhead"] = overhead(lm, tokenizer, preset, args.repeat, device, config["vocab_size"])
    result["sweep"] = [sweep_row(lm, tokenizer, config, b, preset, args.repeat, device) for b in preset["batches"]]
    for row in result["sweep"]:
        row["fraction_of_peak"] = row["achieved_gbps"] / result["peak_gbps"] if result["peak_gbps"] else None
    report(result)
    slug = name.lower().replace("nvidia ", "").replace(" ", "-") + ("-tiny" if args.tiny else "")
    out = Path(args.out or f"eval/results/bench/gpu-{slug}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
