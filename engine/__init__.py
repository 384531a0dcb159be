"""engine: prompt-and-chain reasoning over Jinja step templates, batched on vLLM or transformers.

This module is the library's public face: users' chain files, the README and `prompts/` import from here
alone (`from engine import Step, Sequence, SamplingSettings, load_backend, run_all`), so the folders below
can change without breaking them. Names load on first use (scipy and the backends are not imported by
`import engine`, which keeps `python -m engine --help` instant).

    chains/    Step, Sequence, Decompose, Loop, Vote, Compute, Program, Calculator, CalcStep; run_all;
               state_loop, follow_first, gold_from_steps (state-tracking chains)
    synthetic/ put_result, first_group (lay out an expression: a calculation's result in place, its first
               innermost group)
    backends/  load_backend, close_backend, ScriptedBackend
    runs/      EvalSettings, prepare, run_eval, verify_run, compare_runs
    finetune/  FinetuneSettings, run_finetune
    scoring/   the answer extractors and is_correct
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    # chain nodes and running them
    "Step": "engine.chains.nodes",
    "Sequence": "engine.chains.nodes",
    "Decompose": "engine.chains.nodes",
    "Loop": "engine.chains.nodes",
    "Vote": "engine.chains.nodes",
    "Compute": "engine.chains.nodes",
    "Program": "engine.chains.nodes",
    "Calculator": "engine.chains.nodes",
    "CalcStep": "engine.chains.calc_step",
    "ExampleRun": "engine.chains.scheduler",
    "run_all": "engine.chains.scheduler",
    "render_template": "engine.chains.templates",
    "state_loop": "engine.chains.follow",
    "follow_first": "engine.chains.follow",
    "gold_from_steps": "engine.chains.follow",
    "put_result": "engine.synthetic.multistep_arithmetic",
    "first_group": "engine.synthetic.multistep_arithmetic",
    # requests, sampling and backends
    "SamplingSettings": "engine.sampling",
    "GenerationRequest": "engine.generation",
    "GenerationResult": "engine.generation",
    "Completion": "engine.generation",
    "load_backend": "engine.backends.base",
    "close_backend": "engine.backends.base",
    "ScriptedBackend": "engine.backends.scripted",
    # tasks
    "TaskSpec": "engine.tasks.spec",
    "Example": "engine.examples",
    "load_spec": "engine.tasks.spec",
    "load_examples": "engine.tasks.spec",
    # evaluation runs
    "EvalSettings": "engine.runs.plan",
    "RunPlan": "engine.runs.plan",
    "prepare": "engine.runs.plan",
    "run_eval": "engine.runs.evaluate",
    "verify_run": "engine.runs.verify",
    "compare_runs": "engine.scoring.stats",
    # fine-tuning
    "FinetuneSettings": "engine.finetune.settings",
    "run_finetune": "engine.finetune.run",
    # parsers
    "extract_number": "engine.scoring.answers",
    "extract_choice": "engine.scoring.answers",
    "extract_yes_no": "engine.scoring.answers",
    "extract_bool": "engine.scoring.answers",
    "extract_answer_is": "engine.scoring.answers",
    "extract_free_text": "engine.scoring.answers",
    "answers_match": "engine.scoring.answers",
    "is_correct": "engine.scoring.parsers",
    # the errors users catch
    "EngineError": "engine.errors",
    "ChainError": "engine.errors",
    "TemplateError": "engine.errors",
    "TaskError": "engine.errors",
    "ModelError": "engine.errors",
    "BackendUnavailable": "engine.errors",
}

__all__ = sorted(_EXPORTS)

_RENAMED = {"render_template": "render", "run_finetune": "finetune"}
"""Public names that differ from the name in their module: `render` alone would say too little here, and
`engine.finetune` is the fine-tuning package, so its entry point is `run_finetune` (as `run_eval`)."""


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and editors see; at run time the names above load on first use
    from engine.backends.base import close_backend, load_backend
    from engine.backends.scripted import ScriptedBackend
    from engine.chains.calc_step import CalcStep
    from engine.chains.follow import follow_first, gold_from_steps, state_loop
    from engine.chains.nodes import Calculator, Compute, Decompose, Loop, Program, Sequence, Step, Vote
    from engine.chains.scheduler import ExampleRun, run_all
    from engine.chains.templates import render as render_template
    from engine.errors import BackendUnavailable, ChainError, EngineError, ModelError, TaskError, TemplateError
    from engine.finetune.run import finetune as run_finetune
    from engine.finetune.settings import FinetuneSettings
    from engine.generation import Completion, GenerationRequest, GenerationResult
    from engine.runs.evaluate import run_eval
    from engine.runs.plan import EvalSettings, RunPlan, prepare
    from engine.runs.verify import verify_run
    from engine.sampling import SamplingSettings
    from engine.synthetic.multistep_arithmetic import first_group, put_result
    from engine.scoring.answers import (answers_match, extract_answer_is, extract_bool, extract_choice,
                                        extract_free_text, extract_number, extract_yes_no)
    from engine.scoring.parsers import is_correct
    from engine.scoring.stats import compare_runs
    from engine.examples import Example
    from engine.tasks.spec import TaskSpec, load_examples, load_spec
