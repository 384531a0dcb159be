"""How much KV cache a run needs, estimated before the engine starts, so that vLLM reserves that and not a fixed
share of the machine's memory (the arithmetic from work to bytes is the backend's: `engine.backends.kv_cache`).

A run knows its work before the engine starts: how many sequences can be in flight at once (items × samples, up
to vLLM's `max_num_seqs`), the longest first prompt, what one item's sequence holds at one time beyond it (one
step's output at a typical length: `held_tokens`), and the prompt opening every item
shares (few-shot exemplars, which prefix caching stores once). The worst case (`chain_tokens`: every step's
`max_tokens` along the chain piled into one sequence) reserved 7 GB for a 128-item decompose run that used a
fraction of it; vLLM preempts and recomputes a sequence that outgrows its share, so a smaller cache changes no
answer, only (when too small) the time.
"""

from __future__ import annotations

from engine.backends.kv_cache import MAX_NUM_SEQS, KVWork


def chain_tokens(chain, context: int) -> int:
    """Tokens a chain may generate into one item's sequences: `max_tokens` of each model step, repeated for loops
    and sub-questions, capped at the context (a prompt can never hold more)."""
    def walk(node) -> int:
        sampling = getattr(node, "sampling", None)
        own = sampling.max_tokens if sampling is not None else 0
        if hasattr(node, "nodes"):  # Sequence
            return own + sum(walk(child) for child in node.nodes)
        if hasattr(node, "plan"):  # Decompose: the plan, then one solve per sub-question
            return walk(node.plan) + node.max_sub_questions * walk(node.solve)
        if hasattr(node, "body"):  # Loop: iterations pile up in one sequence unless each prompt starts afresh
            iterations = getattr(node, "max_iterations", 1) if getattr(node, "carries_outputs", True) else 1
            return iterations * walk(node.body)
        if hasattr(node, "inner"):  # Vote: each branch is its own sequence, counted in `sequences`
            return walk(node.inner)
        return own

    return min(walk(chain), context)


def step_tokens(chain) -> int:
    """The largest `max_tokens` of any one model step of the chain (what one request may generate)."""
    from engine.chains.nodes import walk

    return max((node.sampling.max_tokens for node in walk(chain) if getattr(node, "sampling", None) is not None),
               default=0)


TYPICAL_OUTPUT_TOKENS = 128
"""What one sequence is reserved of a step's output, when the step's limit is higher.

The cache holds, at one time, the prompts and outputs so far of the sequences in flight: at most the run's
prompts plus its outputs, so what must fit is the run's *mean* output, not its limit. The means measured on this
engine's runs are well below their limits (arithmetic `cot` at depth 8: 50 tokens of 384; the 128-item
`decompose` run: 67 an item over its plan and solves, limited to 160 and 128 each; GSM8K `cot`: 215 of 384). A sequence that outgrows its share is preempted by
vLLM and resumed from the prefix cache; measured (GSM8K `cot`, 64 items, a cache of 600 MiB against 1,621): 4
preemptions, 0.99x the time, 64/64 identical texts. The pool never goes below one full context, so any one
sequence can always finish."""


def held_tokens(chain, context: int) -> int:
    """Tokens one item's sequence is reserved beyond its first prompt: one step's output (the chain's largest
    step) at a typical length, `TYPICAL_OUTPUT_TOKENS` (or the step's limit where that is less), never more than
    `chain_tokens` (every output of the chain piled into one sequence, the worst case). What a later prompt
    carries of earlier steps is not reserved: it is usually far below their limits.

    Measured on the 128-item decompose run (`python eval/bench_kv.py`): the worst case reserved 1,184 tokens an
    item (7,026 MiB) for a run that generated 8,582 tokens in all. A preemption changes no answer (fp32 greedy
    text does not depend on the batch; a test forces some and compares every item) and is counted as
    `preemptions` in summary.json."""
    return min(chain_tokens(chain, context), step_tokens(chain), TYPICAL_OUTPUT_TOKENS)


def common_prefix(token_lists: list[list[int]]) -> int:
    """Length of the token prefix every list starts with."""
    if not token_lists:
        return 0
    first, length = token_lists[0], min(len(t) for t in token_lists)
    for index in range(length):
        if any(t[index] != first[index] for t in token_lists):
            return index
    return length


def estimate_work(chain, states: list[dict], samples: int, tokenizer, context: int = 4096,
                  worst_case: bool = False) -> KVWork:
    """The KV work of running `chain` over items with these initial `states` (first prompts rendered here): what
    the chain holds at one time (`held_tokens`), or with `worst_case` every step's limit piled up."""
    from engine.backends.formatting import prompt_token_ids
    from engine.chains.scheduler import first_request

    prompts = []
    for state in states:
        request = first_request(chain, state)
        if request is not None:
            prompts.append(prompt_token_ids(request, tokenizer))
    shared = common_prefix(prompts) if len(prompts) > 1 else 0
    longest = max((len(p) for p in prompts), default=0)
    added = chain_tokens(chain, context) if worst_case else held_tokens(chain, context)
    per_sequence = min(context, longest - shared + added)
    sequences = min(MAX_NUM_SEQS, max(1, len(states) * max(1, samples)))
    return KVWork(sequences=sequences, tokens_per_sequence=per_sequence, shared_prefix=shared)


def work_of_run(model: str | None, chain, spec, exemplars: list[dict], examples, samples: int,
                worst_case: bool = False) -> KVWork:
    """The KV work of one evaluation run (its items' first prompts, through the model's own tokenizer)."""
    from transformers import AutoTokenizer

    from engine.models import resolve_model
    from engine.chains.strategies import initial_state

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))
    return estimate_work(chain, [initial_state(e, spec, exemplars) for e in examples], samples, tokenizer,
                         worst_case=worst_case)


def work_of_plan(plan, examples=None, worst_case: bool = False) -> KVWork:
    """The KV work of one run's plan, over `examples` (default: all of the plan's items)."""
    settings = plan.settings
    return work_of_run(settings.model, plan.chain, plan.spec, plan.exemplars,
                       plan.examples if examples is None else examples, settings.samples, worst_case)


def work_of_plans(plans) -> KVWork:
    """The largest KV work among several runs' plans that will share one engine (they run one after another)."""
    work = None
    for plan in plans:
        one = work_of_plan(plan)
        work = one if work is None else work.merge(one)
    return work
