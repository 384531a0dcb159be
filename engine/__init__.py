"""engine: prompt-and-chain reasoning over Jinja step templates, batched on vLLM or transformers.

Start with `python -m engine --help`; the library's entry points are `load_backend`, the chain nodes in
`engine.chain`, `run_eval` in `engine.evaluate`, and `finetune` in `engine.finetune`.
"""

__version__ = "0.1.0"
