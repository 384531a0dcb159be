"""Evaluation runs and their durability: one run (`evaluate`), its plan (`plan`: settings -> RunPlan), the chain
over its items (`items`), what it generates with (`backend`: backend, step cache, scheduler, preemptions), many
runs on one backend (`many`), Ray shards (`ray_shards`), the run folder (`folder`: settings, resume, the record
sink), the step cache (`step_cache`), the floor (`floor`: the same chain with no model), `verify`, `compare`, the
written report (`report`) and the estimate of a run's KV-cache work (`kv_work`).
"""
