"""Pure functions between our request type and the libraries: no model is loaded here.

Both backends call `prompt_text` and `prompt_token_ids`, so chat messages are rendered by the model's own
chat template identically on `hf` and `vllm`, and both see exactly the same token ids.
"""

from __future__ import annotations

from engine.errors import ModelError
from engine.generation import GenerationRequest, GenerationResult
from engine.sampling import SamplingSettings


def prompt_text(request: GenerationRequest, tokenizer) -> str:
    """The exact text the model sees: the prompt itself, or the messages through the chat template, then any
    continuation of the model's own answer."""
    return _opening(request, tokenizer) + (request.continuation or "")


def _opening(request: GenerationRequest, tokenizer) -> str:
    if request.prompt is not None:
        return request.prompt
    if not getattr(tokenizer, "chat_template", None):
        raise ModelError(
            "this model's tokenizer has no chat template: send a plain prompt instead of chat messages, "
            "or use an instruction-tuned checkpoint"
        )
    return tokenizer.apply_chat_template(request.messages_as_dicts(), tokenize=False, add_generation_prompt=True)


def labelled_prompt(request: GenerationRequest) -> str:
    """What a record shows as the prompt where no chat template is at hand (a server renders it; the null
    backend has no model): the text sent, or the chat as role-labelled turns.

    >>> labelled_prompt(GenerationRequest.chat([{"role": "user", "content": "Hi"}]))
    '[user]\\nHi'
    """
    if request.prompt is not None:
        return request.prompt + (request.continuation or "")
    turns = [f"[{role}]\n{content}" for role, content in request.messages]
    if request.continuation:
        turns.append(f"[assistant]\n{request.continuation}")
    return "\n".join(turns)


def prompt_token_ids(request: GenerationRequest, tokenizer) -> list[int]:
    """Token ids of `prompt_text`; a chat template already writes its special tokens, so none are added.

    A continuation is tokenized on its own and appended, as fine-tuning tokenizes a prompt and its answer, so
    that text the model wrote reaches it as the same tokens at training and at generation.
    """
    ids = tokenizer(_opening(request, tokenizer), add_special_tokens=request.prompt is not None)["input_ids"]
    if request.continuation:
        ids = ids + tokenizer(request.continuation, add_special_tokens=False)["input_ids"]
    return ids


def too_long(request: GenerationRequest, ids: list[int], context: int | None, tokenizer) -> GenerationResult | None:
    """A failed result for a prompt that leaves no room in the model's context, else None.

    One such item must fail with its reason while the rest of the wave is generated: vLLM would reject the
    whole call, and transformers would run past the positions the model was trained on.
    """
    if context is None or len(ids) < context:
        return None
    reason = (f"the prompt has {len(ids)} tokens, the model's context holds {context}: "
              "shorten the template or the exemplars, or use a model with a longer context")
    return GenerationResult(request.key, prompt_text(request, tokenizer), len(ids), (), error=reason)


def vllm_sampling_kwargs(settings: SamplingSettings) -> dict:
    """Keyword arguments for `vllm.SamplingParams`."""
    kwargs = {
        "n": settings.n,
        "max_tokens": settings.max_tokens,
        "temperature": settings.temperature,
        "top_p": settings.top_p if not settings.greedy else 1.0,
        "stop": list(settings.stop) or None,
    }
    if settings.seed is not None:
        kwargs["seed"] = settings.seed
    return kwargs


def hf_generate_kwargs(settings: SamplingSettings) -> dict:
    """Keyword arguments for `model.generate` (stop strings are cut afterwards by `cut_at_stop`)."""
    kwargs = {"max_new_tokens": settings.max_tokens, "num_return_sequences": settings.n}
    if settings.greedy:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=0)
    return kwargs


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, str | None]:
    """Cut `text` before the earliest stop string; return it and the stop string found (None if none).

    >>> cut_at_stop("4\\nQuestion: next", ("Question:",))
    ('4\\n', 'Question:')
    >>> cut_at_stop("no stop here", ("###",))
    ('no stop here', None)
    """
    found = [(i, s) for s in stops if (i := text.find(s)) >= 0]
    if not found:
        return text, None
    position, stop = min(found)
    return text[:position], stop


def batches(indices: list[int], size: int) -> list[list[int]]:
    """Split `indices` into consecutive groups of at most `size`."""
    return [indices[i : i + size] for i in range(0, len(indices), size)]
