"""One training round with transformers' Trainer: LoRA (PEFT) or full fine-tuning on training pairs.

The loop is the library's: AdamW with linear warm-up and decay, weight decay, gradient clipping, checkpoints
that `--resume` continues from, a progress bar, TensorBoard events (and W&B when asked). What is ours is the
evaluation: every `eval_every` steps the model in training runs the strategy's chain on the validation items
through the engine's own scheduler and scoring (hf backend on the live model), the Trainer keeps the checkpoint
with the best validation accuracy, and transformers' EarlyStoppingCallback stops after `patience` evaluations
without a better one. The loss is computed on the model's turns only (prompt tokens are labelled -100).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from engine.errors import EngineError, ModelError
from engine.finetune.batches import IGNORE, keeps_logits_by_index, labelled_loss, training_collator


def tokenize_pairs(pairs, tokenizer, max_length: int = 2048) -> list[dict]:
    """Prompt ids (labels masked) + answer ids ending with EOS (learned), as the backends tokenize them."""
    eos = tokenizer.eos_token or ""
    rows = []
    for pair in pairs:
        prompt = tokenizer(pair.prompt, add_special_tokens=False)["input_ids"]
        answer = tokenizer(pair.completion + eos, add_special_tokens=False)["input_ids"]
        ids, labels = (prompt + answer)[:max_length], ([IGNORE] * len(prompt) + answer)[:max_length]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return rows


def load_for_training(base_dir: str, method: str, lora_r: int, seed: int, start_from: str | None = None):
    """The base model in fp32 (small LoRA updates would round away in bf16), wrapped by PEFT for LoRA: a fresh
    adapter of rank `lora_r`, or the adapter in the folder `start_from` with its weights trainable."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    try:
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"base model {base_dir} has no usable tokenizer ({str(exc).splitlines()[0][:120]}): "
                         "copy tokenizer.json and tokenizer_config.json into it") from None
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"  # training batches: positions count from 0 at each sequence's start
    if method == "lora" and start_from is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, start_from, is_trainable=True)
    elif method == "lora":
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0, target_modules="all-linear",
                            task_type="CAUSAL_LM")
        model = get_peft_model(model, config)
    return model, tokenizer


def _trainer_class():
    from transformers import Trainer

    class ChainEvalTrainer(Trainer):
        """A Trainer whose evaluation is the engine's own: chain accuracy on the validation items."""

        def __init__(self, *args, validate, **kwargs):
            super().__init__(*args, **kwargs)
            self._validate = validate

        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            start = time.perf_counter()
            was_training = self.model.training
            self.model.eval()
            try:
                accuracy = self._validate(self.model, self.processing_class)
            finally:
                self.model.train(was_training)
            metrics = {f"{metric_key_prefix}_accuracy": accuracy,
                       f"{metric_key_prefix}_rank": accuracy + LATER_WINS * self.state.global_step,
                       f"{metric_key_prefix}_seconds": round(time.perf_counter() - start, 1)}
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
            return metrics

    return ChainEvalTrainer


LATER_WINS = 1e-9
"""Per step, added to validation accuracy to rank checkpoints (`eval_rank`): a tie goes to the later one, which
trained longer. The library keeps the first of equal scores, so a run that validated 0.97 at steps 150, 300 and
450 was tested at step 150. Far below any accuracy's step (1/n) for any run shorter than 10^5 steps."""


def _stop_when_perfect():
    from transformers import TrainerCallback

    class StopWhenPerfect(TrainerCallback):
        """Nothing can beat a perfect validation score: stop instead of spending the rest of the budget."""

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if metrics and metrics.get("eval_accuracy", 0.0) >= 1.0:
                control.should_training_stop = True

    return StopWhenPerfect()


def refuse_unsupported_bf16(bf16: bool) -> None:
    """--bf16 on a GPU without bf16 (before Ampere) fails deep inside TrainingArguments: say it in one line first.
    A CPU runs bf16 autocast anywhere (emulated where it has no bf16 instructions, so slower, never wrong)."""
    import torch

    if bf16 and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        raise EngineError(f"--bf16: this GPU ({torch.cuda.get_device_name(0)}) has no bf16: leave --bf16 out "
                          "(training then runs in fp32)")


def train_round(model, tokenizer, train_rows: list[dict], validate, settings, folder: Path, resume: bool) -> dict:
    """Train until max_steps or early stopping; the best checkpoint (by validation accuracy) is loaded at the end."""
    import torch
    from torch.utils.tensorboard import SummaryWriter
    from transformers import EarlyStoppingCallback, TrainingArguments
    from transformers.integrations import TensorBoardCallback

    refuse_unsupported_bf16(settings.bf16)
    report_to = ["wandb"] if settings.wandb else []
    if settings.wandb:
        import importlib.util

        if importlib.util.find_spec("wandb") is None:
            raise EngineError("--wandb needs the wandb package: pip install wandb (and wandb login)")
    arguments = TrainingArguments(
        output_dir=str(folder / "checkpoints"),
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
        learning_rate=settings.lr,
        lr_scheduler_type="linear",
        warmup_steps=min(settings.warmup_steps, settings.max_steps),
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        optim="adamw_torch",
        logging_steps=max(1, min(10, settings.eval_every)),
        eval_strategy="steps",
        eval_steps=settings.eval_every,
        save_strategy="steps",
        save_steps=settings.eval_every,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model="rank",  # validation accuracy, ties to the later checkpoint
        greater_is_better=True,
        report_to=report_to,
        seed=settings.seed,
        data_seed=settings.seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=settings.bf16,  # autocast: bf16 matrix products, fp32 weights, so small LoRA updates do not round away
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=False,
    )
    writer = SummaryWriter(log_dir=str(folder / "tensorboard"))
    trainer = _trainer_class()(
        model=model, args=arguments, train_dataset=train_rows, eval_dataset=train_rows[:1],
        data_collator=training_collator(model, tokenizer, settings.packing),
        compute_loss_func=labelled_loss if keeps_logits_by_index(model) else None,  # batches keep learnt logits
        processing_class=tokenizer, validate=validate,
        callbacks=[TensorBoardCallback(tb_writer=writer), EarlyStoppingCallback(settings.patience),
                   # items of a --train-task generator all validated right say little about the real items: the
                   # run spends its budget (a tracking run that stopped at half scored 92.0 where 98.8 had been)
                   *([_stop_when_perfect()] if settings.train_task is None else [])],
    )
    start = time.perf_counter()
    checkpoint = _last_checkpoint(folder / "checkpoints") if resume else None
    output = trainer.train(resume_from_checkpoint=checkpoint)
    writer.close()
    history = trainer.state.log_history
    (folder / "training_log.json").write_text(json.dumps(history, indent=2))
    return {
        "steps": trainer.state.global_step,
        "train_loss": output.training_loss,
        "first_loss": next((h["loss"] for h in history if "loss" in h), None),
        "last_loss": next((h["loss"] for h in reversed(history) if "loss" in h), None),
        "best_validation_accuracy": _accuracy_at(history, trainer.state.best_model_checkpoint),
        "loaded_step": _step_of(trainer.state.best_model_checkpoint) or trainer.state.global_step,
        "validation": [{"step": h["step"], "accuracy": h["eval_accuracy"]} for h in history if "eval_accuracy" in h],
        "tokens_seen": _tokens_seen(train_rows, trainer.state.global_step, settings.batch_size),
        "train_seconds": round(time.perf_counter() - start, 1),
        "resumed_from": checkpoint,
        "model": trainer.model,
    }


def _step_of(checkpoint: str | None) -> int | None:
    """The step of the checkpoint the run ends with ("…/checkpoint-300" -> 300); None without one."""
    return int(checkpoint.rsplit("-", 1)[1]) if checkpoint else None


def _accuracy_at(history: list[dict], checkpoint: str | None) -> float | None:
    step = _step_of(checkpoint)
    return next((h["eval_accuracy"] for h in history if "eval_accuracy" in h and h["step"] == step), None)


def _tokens_seen(rows: list[dict], steps: int, batch: int) -> int:
    if not rows:
        return 0
    mean = sum(len(r["input_ids"]) for r in rows) / len(rows)
    return int(mean * steps * batch)


def _last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    if not folder.is_dir():
        return None
    return get_last_checkpoint(str(folder))
