"""What a fine-tuning run is: one validated settings object (what `python -m engine finetune` takes)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from engine.tasks.spec import parse_depths


class FinetuneSettings(BaseModel):
    """Everything that defines a fine-tuning run; the same settings and seed give the same training data."""

    model_config = ConfigDict(extra="forbid")

    task: str
    train_task: str | None = None
    """The task the training and validation items come from (a generator that writes items in `task`'s own
    form); the before/after test stays on `task`'s items. Hygiene runs against `task`: a training or validation
    item whose question is one of its test questions is dropped and counted."""
    strategy: str | None = None
    """Whose chain is learned: each model step of it becomes a training example (its exact prompt, gold output)."""
    chain: str | None = None
    """A custom chain (`FILE.py:NAME`) instead of a strategy. `--source gold` needs its gold writer (the chain
    file's `gold(step_name, example, state)`, or each model step's `gold=`); `--source self` learns from its own
    correct chains."""
    out: str
    """Run folder: checkpoints, the final model or adapter in model/, training log, TensorBoard events, summary."""
    model: str | None = None
    """The base model (default smollm2-135m)."""
    method: Literal["lora", "full"] = "lora"
    start_from: str | None = None
    """A LoRA adapter (its folder, or a shipped adapter's name such as smollm2-135m-bbh) whose weights training
    continues from instead of fresh ones. The result is again one adapter on the same base, so tasks can be
    added to an adapter in a run that fits a session instead of training every task again from nothing (keep
    its old tasks in the mixture, or they fade). Its base must be the run's `--model`; its rank is kept."""
    source: Literal["gold", "self"] = "gold"
    """gold: chains written from the task's gold reasoning; self: the model's own correct chains (STaR)."""
    rounds: int = 1
    """Self-taught rounds (sample, keep correct chains, fine-tune); gold training is one round."""
    max_steps: int = 120
    """Optimizer steps per round (early stopping on validation accuracy may end a round sooner)."""
    depths: str | None = None
    """Depths of the synthetic training and validation items; default the training task file's `train_depths`,
    else 1-4."""
    test_depths: str = "1-4,6,8"
    """Depths of the held-out test items scored before and after training (deeper ones were never trained on)."""
    test_items: int = 100
    """Held-out test items per depth (the evaluation's own items: `eval --seed 0`)."""
    train_items: int = 200
    """Training items per depth (synthetic tasks) or in all (data files)."""
    val_items: int = 4
    """Validation items per training depth; early stopping reads their accuracy, never the test items'."""
    eval_every: int = 30
    """Steps between validation evaluations (and checkpoints)."""
    patience: int = 3
    """Evaluations without a better validation accuracy before training stops early."""
    learning_rate: float | None = None
    """Default 1e-3 for LoRA, 1e-4 for full fine-tuning."""
    batch_size: int = 8
    group_by_length: bool = False
    """Batch pairs of similar length together (the library's LengthGroupedSampler), so a batch pads less: a
    mixture of short and long chains trains faster. Off by default so the committed commands still make the
    adapters they made."""
    packing: bool = True
    """Concatenate each batch's pairs into one row instead of padding them to the longest (the same loss and
    gradients, no pad tokens: `engine.finetune.batches`). `--no-packing` pads, as runs before packing did."""
    bf16: bool = False
    """Mixed precision: matrix products in bf16 under autocast, weights and optimizer state in fp32. Pays where
    the hardware has bf16 (a GPU, a CPU with AVX-512 BF16 or AMX); a CPU without it emulates bf16 and gains nothing.
    `eval/bench_train.py` measures it beside packing."""
    warmup_steps: int = 10
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    lora_r: int = 16
    samples: int = 4
    """Self-taught rounds: chains sampled per training item."""
    temperature: float = 0.7
    """Self-taught rounds: sampling temperature."""
    self_items: int = 200
    """Self-taught rounds: training items sampled per round (per depth)."""
    seed: int = 0
    backend: Literal["auto", "hf", "vllm"] = "auto"
    """Backend for sampling and for the before/after test (validation always runs on the model in training)."""
    resume: bool = False
    wandb: bool = False
    """Also log to Weights & Biases (needs `wandb` installed and configured)."""

    @field_validator("max_steps", "rounds", "test_items", "train_items", "val_items", "eval_every", "batch_size",
                     "lora_r", "samples", "self_items")
    @classmethod
    def _at_least_one(cls, value: int, info) -> int:
        if value < 1:
            raise ValueError(f"--{info.field_name.replace('_', '-')} must be at least 1, got {value}")
        return value

    @field_validator("backend", mode="before")
    @classmethod
    def _needs_a_model(cls, value):
        from engine.backends.names import refuse_null

        refuse_null(value, "finetune")
        return value

    @model_validator(mode="after")
    def _two_tasks(self):
        if self.train_task is not None and self.train_task == self.task and not self.is_mixture:
            raise ValueError(f"--train-task {self.train_task} is the --task itself: name the task whose generator "
                             "writes training items (or drop --train-task to train on the task's own training data)")
        return self

    @model_validator(mode="after")
    def _lora_to_continue(self):
        if self.start_from is not None and self.method != "lora":
            raise ValueError(f"--start-from {self.start_from} continues a LoRA adapter: drop --method full "
                             "(or --start-from, to train the whole model from its base)")
        return self

    @model_validator(mode="after")
    def _one_chain(self):
        if self.is_mixture and self.chain is None:
            return self  # a mixture: each task's own default strategy, unless --strategy names one for all
        if (self.strategy is None) == (self.chain is None):
            raise ValueError("pass --strategy (a built-in strategy) or --chain FILE.py:NAME, one of the two")
        return self

    @field_validator("depths", "test_depths")
    @classmethod
    def _depths_parse(cls, value: str | None) -> str | None:
        if value is not None:
            parse_depths(value)
        return value

    @property
    def is_mixture(self) -> bool:
        """Several tasks (`--task a,b --train-task ga,gb`): one adapter for all (`engine.finetune.mixture`)."""
        return "," in self.task or "," in (self.train_task or "")

    @property
    def lr(self) -> float:
        return self.learning_rate or (1e-3 if self.method == "lora" else 1e-4)
