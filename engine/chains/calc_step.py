"""A model step with a calculator in the loop, as in the GSM8K paper (Cobbe et al. 2021).

The model writes its working with each calculation annotated as `<<7+5=12>>`. Generation stops at `=`; when
the text since the last `<<` is an open annotation, the engine's calculator (`engine.sandbox.calculator`, no `eval`)
computes the expression and appends `12>>`; generation then continues from there, with everything written so
far as the continuation of the model's answer. An `=` outside an annotation is kept and generation goes on.

Each continuation is one more request yielded to the scheduler, so a calculator step batches across the
dataset like every other step: a wave carries whichever examples are waiting for their next piece of text.
The step's record holds the first prompt, the whole answer (the model's text and the calculator's results)
and the list of calculations made.
"""

from __future__ import annotations

import re
from dataclasses import replace

from engine.sandbox.calculator import calculate
from engine.chains.nodes import Step, raise_if_failed
from engine.chains.scheduler import ExampleRun, StepRecord

OPEN, CLOSE, EQUALS = "<<", ">>", "="
_RESULT = re.compile(r"<<[^<>]*=([^<>]*)>>")


def open_annotation(text: str) -> str | None:
    """The expression of an annotation that `text` leaves open (`... <<3*4` -> "3*4"), else None.

    >>> open_annotation("So <<3*4"), open_annotation("So <<3*4=12>> and"), open_annotation("x = 5")
    ('3*4', None, None)
    """
    start = text.rfind(OPEN)
    if start < 0 or CLOSE in text[start:]:
        return None
    return text[start + len(OPEN):]


def annotation_results(text: str) -> list[str]:
    """The results of every closed annotation, in order.

    >>> annotation_results("<<2+3=5>> then <<5*4=20>>. The answer is 20.")
    ['5', '20']
    """
    return [value.strip() for value in _RESULT.findall(text)]


class CalcStep(Step):
    """A `Step` whose generation pauses at each `<<expression=` for the calculator to fill in the result.

    `max_tokens` of its sampling bounds the model's tokens over all continuations together; `max_calls`
    bounds the number of requests (calculations plus one).
    """

    kind = "model+calculator"
    samples_natively = False  # k samples diverge at different calculations: a vote runs k branches instead

    def __init__(self, *args, max_calls: int = 24, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_calls = max_calls
        if EQUALS not in self.sampling.stop:
            self.sampling = self.sampling.model_copy(update={"stop": (*self.sampling.stop, EQUALS)})

    def with_samples(self, k: int, temperature: float | None = None, seed: int | None = None) -> "CalcStep":
        step = super().with_samples(k, temperature, seed)
        copy = CalcStep(step.name, step.template, step.sampling, step.parse, step.output, step.template_dirs,
                        max_calls=self.max_calls)
        copy.gold = self.gold
        return copy

    def run(self, run: ExampleRun):
        first = self.request(run)
        written, calls, tokens, prompt_tokens, seconds, reused = "", [], 0, 0, 0.0, 0
        prompt, finish, cached = None, "length", True
        for _ in range(self.max_calls):
            budget = self.sampling.max_tokens - tokens
            if budget < 1:
                break
            sampling = first.sampling.model_copy(update={"max_tokens": budget})
            (result,) = yield [replace(first, sampling=sampling, continuation=written or None)]
            raise_if_failed(result, self.name)
            completion = result.completions[0]
            prompt = prompt or result.prompt_text
            prompt_tokens += result.prompt_tokens
            reused += result.cached_prompt_tokens
            tokens += completion.completion_tokens
            seconds += result.seconds
            cached = cached and result.cached
            written += completion.text
            finish = completion.finish_reason
            if completion.stop_string != EQUALS:
                break  # end of text, another stop string, or the token limit
            expression = open_annotation(written)
            value = calculate(expression) if expression is not None else None
            if expression is not None:
                calls.append({"expression": expression, "value": value})
            # the calculator writes the result; with nothing to compute the model goes on after its own "="
            written += EQUALS + (f"{value}{CLOSE}" if value is not None else "")
        value = self.parse(written)
        run.state[self.output] = value
        run.state[f"{self.output}_text"] = written
        run.records.append(StepRecord(
            step=self.name, kind=self.kind, prompt=prompt, outputs=[written], parsed=value,
            prompt_tokens=prompt_tokens, cached_prompt_tokens=reused, completion_tokens=tokens,
            finish_reasons=[finish], seconds=seconds,
            request_key=first.key, branch=run.branch, tool_calls=calls, cached=cached,
        ))
        return value
