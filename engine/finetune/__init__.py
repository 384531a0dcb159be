"""Fine-tuning the base model on reasoning chains: gold chains or self-taught rounds, LoRA or full.

    from engine.finetune import finetune
    summary = finetune(task="arithmetic", strategy="stepwise", out="runs/ft", max_steps=200)

`summary["test"]` holds accuracy before and after on the same held-out items, with the paired test; the model
in `summary["model_dir"]` is a valid `--model` for every verb. See `run.py` for what the folder holds.
"""

from engine.finetune.run import finetune
from engine.finetune.settings import FinetuneSettings

__all__ = ["FinetuneSettings", "finetune"]
