"""GGUF -> Hugging Face checkpoint (safetensors in bf16, tokenizer, chat template, generation config).

transformers dequantises a GGUF file when it loads one, but then refuses `save_pretrained` because the model
still carries its GGUF quantizer. The quantizer has nothing left to do after dequantisation, so we drop it
from the model and its config and save plain bf16 weights that `hf` and `vllm` both load.
"""

from __future__ import annotations

from pathlib import Path

from engine.errors import ModelError
from engine.files import staged_folder

# SmolLM2-Instruct's own chat template (ChatML with a default system prompt), used only when the GGUF file
# carries none, so that chat rendering never silently falls back to a generic format.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def convert_gguf(gguf_path: Path, target: Path, marker: dict) -> None:
    """Write a bf16 checkpoint for `gguf_path` into `target`, atomically (a half-written folder never stays).

    `marker` is written as engine-converted.json inside the folder before it takes its final name, so a folder
    with the marker is always complete; a process that finds another's finished folder in place keeps it.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except ImportError as exc:
        raise ModelError(f"reading GGUF needs the packages gguf and accelerate: pip install gguf accelerate ({exc})") from exc
    _drop_quantizer(model)
    model = model.to(torch.bfloat16)
    model.config.dtype = torch.bfloat16
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    generation = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    with staged_folder(target, "engine-converted.json", marker) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        generation.save_pretrained(staging)


def _drop_quantizer(model) -> None:
    model.hf_quantizer = None
    for attribute in ("is_quantized", "quantization_method"):
        if hasattr(model, attribute):
            try:
                setattr(model, attribute, False if attribute == "is_quantized" else None)
            except AttributeError:
                pass
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
