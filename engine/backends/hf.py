"""transformers backend: batched generation with left padding; the CPU default and the test workhorse."""

from __future__ import annotations

import time
from collections import defaultdict

from engine.backends.formatting import (batches, cut_at_stop, hf_generate_kwargs, prompt_text, prompt_token_ids,
                                        too_long)
from engine.errors import BackendUnavailable, ModelError
from engine.generation import Completion, GenerationRequest, GenerationResult


class HFBackend:
    """Loads a checkpoint with transformers and generates for many prompts at once.

    Requests that share sampling settings are generated together, sorted by length and padded on the left
    in batches of `batch_size`; n samples per prompt come from `num_return_sequences`.
    """

    name = "hf"

    def __init__(self, model: str, dtype: str = "auto", device: str | None = None, batch_size: int = 32, progress=None):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise BackendUnavailable(f"the hf backend needs torch and transformers: pip install torch transformers ({exc})") from exc
        self.model = model
        self.batch_size = batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = _torch_dtype(dtype, self.device)
        if progress:
            progress(f"loading {model} with transformers ({torch_dtype}, {self.device})")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype).to(self.device).eval()
        except (OSError, ValueError, KeyError) as exc:  # missing files, unknown architecture, broken config
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ModelError(f"could not load model {model!r} ({first}): check the name or path") from exc
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.dtype = str(torch_dtype).removeprefix("torch.")

    @classmethod
    def from_loaded(cls, lm, tokenizer, batch_size: int = 32) -> "HFBackend":
        """A backend over a model already in memory (fine-tuning validates the model it is training)."""
        backend = cls.__new__(cls)
        backend.model, backend.lm, backend.tokenizer, backend.batch_size = "in-training", lm, tokenizer, batch_size
        backend.device = str(next(lm.parameters()).device)
        backend.dtype = str(next(lm.parameters()).dtype).removeprefix("torch.")
        if tokenizer.pad_token_id is None:  # batches are padded on the left by hand, whatever padding_side says
            tokenizer.pad_token = tokenizer.eos_token
        return backend

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        groups: dict = defaultdict(list)
        for index, request in enumerate(requests):
            groups[request.sampling].append(index)
        results: list[GenerationResult | None] = [None] * len(requests)
        for sampling, indices in groups.items():
            encoded = {i: prompt_token_ids(requests[i], self.tokenizer) for i in indices}
            context = getattr(self.lm.config, "max_position_embeddings", None)
            for i in indices:
                results[i] = too_long(requests[i], encoded[i], context, self.tokenizer)
            by_length = sorted((i for i in indices if results[i] is None), key=lambda i: len(encoded[i]))
            for batch in batches(by_length, self.batch_size):
                for i, result in zip(batch, self._generate_batch([requests[i] for i in batch], [encoded[i] for i in batch], sampling)):
                    results[i] = result
        return results  # type: ignore[return-value]

    def _generate_batch(self, requests, encoded, sampling) -> list[GenerationResult]:
        import torch

        start = time.perf_counter()
        width = max(len(ids) for ids in encoded)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in encoded], device=self.device)
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded], device=self.device)
        kwargs = hf_generate_kwargs(sampling)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        with torch.inference_mode():
            output = self.lm.generate(
                input_ids=input_ids, attention_mask=attention, pad_token_id=pad, **kwargs
            )
        new_tokens = output[:, width:].tolist()
        seconds = (time.perf_counter() - start) / len(requests)
        eos_ids = _eos_ids(self.lm, self.tokenizer)
        results = []
        for r, request in enumerate(requests):
            completions = []
            for s in range(sampling.n):
                completions.append(self._completion(new_tokens[r * sampling.n + s], eos_ids, sampling))
            results.append(
                GenerationResult(
                    request_key=request.key,
                    prompt_text=prompt_text(request, self.tokenizer),
                    prompt_tokens=len(encoded[r]),
                    completions=tuple(completions),
                    seconds=seconds,
                )
            )
        return results

    def _completion(self, tokens: list[int], eos_ids: set[int], sampling) -> Completion:
        kept = []
        hit_eos = False
        for token in tokens:
            if token in eos_ids:
                hit_eos = True
                break
            kept.append(token)
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        text, stop_string = cut_at_stop(text, sampling.stop)
        finish = "stop" if hit_eos or stop_string else "length"
        return Completion(text=text, completion_tokens=len(kept) + (1 if hit_eos else 0), finish_reason=finish,
                          stop_string=stop_string)


def _eos_ids(lm, tokenizer) -> set[int]:
    ids = lm.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def _torch_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        # fp32 on CPU: without bf16 matrix units it is as fast, and it matches vLLM's fp32 output exactly
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise ModelError(f"unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16") from None
