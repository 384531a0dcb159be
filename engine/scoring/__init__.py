"""Scoring: pure functions from text to values to figures; no backend, no chain, no files.

`answers` extracts answers from free text, `parsers` names the extractors a task file may choose, `metrics`
holds accuracy, voting, pass@k and per-step figures, `stats` the intervals and paired tests, and `records`
scores one item's run and summarizes a run's records.
"""
