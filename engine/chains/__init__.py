"""Chains: the nodes a reasoning chain is built from, the templates they render, and the schedulers that run them.

`nodes` (Step, Sequence, Decompose, Loop, Vote, Compute, Program, Calculator), `calc_step` (the calculator in
the loop) and `stepwise` (one instruction a step) are the building blocks; `templates` is the one sandboxed
Jinja environment; `strategies` builds the built-in chains and `custom` loads a user's `FILE.py:NAME`;
`scheduler` (waves) and `continuous` (vLLM's engine loop) run a chain over many items at once. Chains know
requests and parsers, never backends' internals, run folders or the command line.
"""
