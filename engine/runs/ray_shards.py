"""`eval --ray [ADDRESS]`: the run's items sharded over Ray workers, each holding its own backend.

The driver (the `eval` process) loads no model: it cuts the items into shards, hands each to an idle worker
and streams every finished shard's records into the one run folder, so the folder has the same form as a
local run's. There are several shards per worker, so records come home often and a lost worker costs only
the shard it held: that shard goes back in the queue for another worker (or a replacement), and the step
cache answers whatever the dead worker had already generated.

A worker rebuilds task, chain and exemplars itself (its own plan, `prepare`): chains hold compiled templates and code from
custom chain files, which are not meant to travel between processes; only settings and item ids do.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections import deque
from contextlib import contextmanager

from engine.errors import EngineError

SHARDS_PER_WORKER = 4
"""Enough that records come home often and a lost shard is a small loss; few enough that a shard still
batches several items per backend call."""


def run_on_ray(settings, examples, on_record, say):
    """Run `examples` over `settings.ray_workers` Ray workers; returns (scored records, about the run).

    `on_record` sees every record of a shard as soon as the shard is home (the run folder streams it to
    samples.jsonl); `say` gets progress lines. A cluster this call started or joined is left before it returns.
    """
    ray_info = {"address": settings.ray, "workers": settings.ray_workers, "shards": 0, "retried_shards": 0}
    if not examples:  # a resumed run with nothing left: no cluster, no model
        return [], _about(None, ray_info, settings)
    ray = _import_ray()
    started_here = _connect(ray, settings.ray, settings.ray_workers, say)
    pool = None
    try:
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        ray_info["per_worker"] = options = worker_resources(nodes, settings.ray_workers)
        pool = WorkerPool(ray, settings, options, say)
        shards = split([example.id for example in examples], settings.ray_workers)
        ray_info["shards"] = len(shards)
        records, ray_info["retried_shards"] = pool.run(shards, on_record)
        return records, _about(pool, ray_info, settings)
    finally:
        if pool is not None:
            pool.stop()
        if started_here:
            ray.shutdown()


def _import_ray():
    """Ray, with usage reporting off (the cluster processes inherit the setting), or a one-line install hint."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as exc:
        raise EngineError(f"--ray needs Ray, which is not installed here ({exc}): pip install -e '.[ray]'") from exc
    return ray


def _connect(ray, address: str, workers: int, say) -> bool:
    """Start a loopback-only local cluster ("local") or join the one at `address`; True when this call must
    leave it again (a library caller that connected before keeps its connection)."""
    if ray.is_initialized():
        return False
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}  # the progress bar stays readable
    if address != "local":
        check_reachable(address)
        say(f"Ray: joining the cluster at {address}")
        try:
            ray.init(address=address, **quiet)
        except Exception as exc:  # noqa: BLE001 - version mismatch, refused handshake...: one line naming it
            raise EngineError(f"could not join the Ray cluster at {address} ({first_line(exc)}): check --ray "
                              "ADDRESS, and that the cluster runs this Ray and Python version") from exc
        return True
    say(f"Ray: starting a local cluster on 127.0.0.1 for {workers} workers")
    try:
        with _loopback_only():
            ray.init(address="local", num_cpus=max(workers, os.cpu_count() or 1), include_dashboard=False, **quiet)
    except Exception as exc:  # noqa: BLE001
        raise EngineError(f"could not start a local Ray cluster ({first_line(exc)}): see `ray start --head` "
                          "for the cause, or pass --ray ADDRESS of a running cluster") from exc
    if (host := ray.util.get_node_ip_address()) not in ("127.0.0.1", "::1"):
        ray.shutdown()
        raise EngineError(f"Ray {ray.__version__} bound its local cluster to {host}, not 127.0.0.1: install the "
                          "tested Ray (pip install -e '.[ray]'), or start a cluster yourself and pass --ray ADDRESS")
    return True


@contextmanager
def _loopback_only():
    """Around a local start: on Linux Ray names a new node (and binds its servers) by the machine's outward
    address, but by 127.0.0.1 where multi-node clusters are off (the macOS default). Ray reads that switch on
    each call, so it is flipped for the start only; the address check after the start catches a Ray where
    this no longer holds."""
    from ray._private import ray_constants

    saved, ray_constants.ENABLE_RAY_CLUSTER = ray_constants.ENABLE_RAY_CLUSTER, False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, naming the address, where nothing listens (Ray itself retries for minutes).
    Addresses without a port ("auto") are left to Ray."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise EngineError(f"no Ray cluster answers at {address} ({exc.strerror or exc}): start one there with "
                          "`ray start --head`, or pass the address it printed to --ray") from exc


def worker_resources(nodes: list[dict], workers: int) -> dict:
    """What each worker asks Ray for, given each live node's resources.

    With GPUs: one whole GPU each (Ray sets CUDA_VISIBLE_DEVICES, so a vLLM engine sees only its own) and one
    CPU. Without: the largest equal CPU share that still fits whole on the nodes, so no worker waits forever
    for room, and torch in each worker uses that many threads (Ray sets OMP_NUM_THREADS to it).
    """
    gpus = sum(int(node.get("GPU", 0)) for node in nodes)
    if gpus:
        if gpus < workers:
            raise EngineError(f"the Ray cluster has {gpus} GPUs for {workers} workers (one each): pass "
                              f"--ray-workers {gpus} or add GPU nodes")
        return {"num_cpus": 1, "num_gpus": 1}
    cpus = [int(node.get("CPU", 0)) for node in nodes]
    for share in range(max(cpus, default=0), 0, -1):
        if sum(count // share for count in cpus) >= workers:
            return {"num_cpus": share}
    raise EngineError(f"the Ray cluster has {sum(cpus)} CPUs for {workers} workers (one each at least): pass "
                      f"--ray-workers {max(sum(cpus), 1)} or add nodes")


def split(ids: list[str], workers: int) -> list[list[str]]:
    """Consecutive shards, about SHARDS_PER_WORKER per worker, at least one item each, sizes within one."""
    count = max(1, min(len(ids), workers * SHARDS_PER_WORKER))
    size, extra = divmod(len(ids), count)
    bounds = [n * size + min(n, extra) for n in range(count + 1)]
    return [ids[bounds[n]:bounds[n + 1]] for n in range(count)]


class ShardWorker:
    """One Ray actor: its own task, chain, backend and step cache, running the shards it is handed."""

    def __init__(self, settings: dict, cwd: str):
        if os.path.isdir(cwd):  # relative --chain/--data/--model paths mean what they meant to the driver
            os.chdir(cwd)
        from engine.runs.plan import EvalSettings

        self.settings, self.cache, self.raw = EvalSettings(**settings), None, None

    def load(self) -> dict:
        """Build the chain and load the backend, once; what was loaded, for the run's summary."""
        import ray

        from engine.runs.backend import choose_scheduler, load_run_backend, open_step_cache
        from engine.runs.plan import prepare

        started, s = time.perf_counter(), self.settings
        self.plan = prepare(s)
        self.by_id = {example.id: example for example in self.plan.examples}
        self.raw = load_run_backend(self.plan)
        kv_bytes = getattr(self.raw, "kv_cache_bytes", None)
        self.backend, self.cache = open_step_cache(s, self.raw)
        self.scheduler = choose_scheduler(s.scheduler, self.backend)
        return {"backend": self.raw.name, "dtype": getattr(self.raw, "dtype", None),
                "model": getattr(self.raw, "served_model", None), "scheduler": self.scheduler,
                "startup_seconds": round(time.perf_counter() - started, 2),
                "kv_cache_mb": round(kv_bytes / 2**20, 1) if kv_bytes else None,
                "cache_path": str(self.cache.path) if self.cache is not None else None,
                "node": ray.util.get_node_ip_address()}

    def run(self, ids: list[str]) -> dict:
        """Score one shard; records as plain JSON values (what samples.jsonl holds), so they travel safely."""
        from engine.environment import peak_rss_mb
        from engine.runs.backend import preemption_count
        from engine.runs.items import run_examples

        missing = [i for i in ids if i not in self.by_id]
        if missing:
            raise EngineError(f"the Ray worker on {os.uname().nodename} has no item {missing[0]}: give every "
                              "node the same task files and data")
        examples = [self.by_id[i] for i in ids]
        before = preemption_count(self.raw)
        scored, waves, _ = run_examples(self.plan, examples, self.backend, self.scheduler)
        cache = {"hits": self.backend.hits, "misses": self.backend.misses} if self.cache is not None else None
        return {"records": [json.loads(json.dumps(r, ensure_ascii=False, default=str)) for r in scored],
                "requests": waves["requests"], "peak_rss_mb": peak_rss_mb(), "cache": cache,
                "preemptions": preemption_count(self.raw, since=before)}

    def close(self) -> None:
        from engine.backends import close_backend

        if self.cache is not None:
            self.cache.close()
        if self.raw is not None:
            close_backend(self.raw)


class WorkerPool:
    """The workers and the shard queue. An idle worker takes the next shard; a lost worker's shard goes to the
    back of the queue (the others finish first, should it be a shard that kills whoever runs it) and the worker
    is replaced, at most `ray_workers` times in all, so such a shard cannot restart workers forever."""

    def __init__(self, ray, settings, options: dict, say):
        self.ray, self.say, self.options = ray, say, options
        self.settings, self.replacements = settings.model_dump(), settings.ray_workers
        if settings.ray == "local" and not (settings.cache or settings.no_cache):  # one machine: the driver's cache
            from engine.runs.step_cache import default_cache_path

            self.settings["cache"] = str(default_cache_path())
        self.actor_class = ray.remote(ShardWorker)
        self.busy: dict = {}  # result ref -> (worker number, actor, shard; None while the worker loads)
        self.live: dict[int, object] = {}  # worker number -> actor
        self.loads: list[dict] = []  # what each worker loaded
        self.latest: dict[int, dict] = {}  # worker number -> figures of its latest shard (counts so far)
        self.requests, self.spawned, self.last_lost = 0, 0, None
        self.preemptions: int | None = None  # summed over shards, where the workers' engines count them
        for _ in range(settings.ray_workers):
            self._spawn()

    def _spawn(self) -> None:
        self.spawned += 1
        number, actor = self.spawned, self.actor_class.options(**self.options).remote(self.settings, os.getcwd())
        self.live[number] = actor
        self.busy[actor.load.remote()] = (number, actor, None)

    def run(self, shards: list[list[str]], on_record) -> tuple[list[dict], int]:
        """Every shard's records (each passed to `on_record` as its shard comes home), and how many shards
        were handed out again after their worker was lost."""
        queue, idle, records, retried = deque(shards), [], [], 0
        total = sum(len(shard) for shard in shards)
        while queue or any(shard is not None for *_, shard in self.busy.values()):
            while queue and idle:
                (number, actor), shard = idle.pop(), queue.popleft()
                self.busy[actor.run.remote(shard)] = (number, actor, shard)
            if not self.busy:
                raise EngineError(f"every Ray worker died (the last {self.last_lost}): {len(records)} of {total} "
                                  "items finished and are kept in samples.jsonl; rerun the same command to finish "
                                  "the rest")
            [ref], _ = self.ray.wait(list(self.busy), num_returns=1)
            number, actor, shard = self.busy.pop(ref)
            try:
                value = self.ray.get(ref)
            except self.ray.exceptions.RayTaskError as exc:  # the worker's own code failed: a retry fails again
                raise as_engine_error(exc) from None
            except self.ray.exceptions.RayError as exc:  # the worker process, or its node, is gone
                if getattr(exc, "actor_init_failed", False):  # it could not even start: nor would a replacement
                    raise EngineError(f"a Ray worker could not start ({last_line(exc)}): install this project, in "
                                      "the same Python version, on every node") from None
                retried += self._lost(number, shard, exc, queue)
                continue
            if shard is None:
                self.loads.append(value)
                self.say(f"Ray: worker {number} ready on {value['node']} in {value['startup_seconds']:.1f}s")
            else:
                self.latest[number] = value
                self.requests += value["requests"]
                if value.get("preemptions") is not None:
                    self.preemptions = (self.preemptions or 0) + value["preemptions"]
                for record in value["records"]:
                    records.append(record)
                    on_record(record)
            idle.append((number, actor))
        return records, retried

    def _lost(self, number: int, shard: list[str] | None, exc, queue: deque) -> bool:
        """Forget a dead worker, queue its shard again, and start a replacement while any are left."""
        _kill(self.ray, self.live.pop(number))  # "unavailable" may not be dead yet: make sure it holds nothing
        doing = ("while loading" if shard is None else f"on item {shard[0]}" if len(shard) == 1
                 else f"on items {shard[0]}..{shard[-1]}")
        self.last_lost, then = f"{doing}: {first_line(exc)}", []
        if shard is not None:
            queue.append(shard)
            then.append("its shard goes back in the queue")
        if self.replacements > 0:
            self.replacements -= 1
            self._spawn()
            then.append("a replacement is starting")
        self.say(f"Ray: worker {number} was lost ({self.last_lost})" + "".join(f"; {t}" for t in then))
        return shard is not None

    def stop(self) -> None:
        """Release idle workers' backends (a vLLM engine frees its GPU), then end every actor; a worker still
        loading or running is ended at once rather than waited for."""
        busy = {number for number, *_ in self.busy.values()}
        closing = [actor.close.remote() for number, actor in self.live.items() if number not in busy]
        try:
            if closing:
                self.ray.wait(closing, num_returns=len(closing), timeout=60)
        except Exception:  # noqa: BLE001 - a worker that cannot close is ended below all the same
            pass
        for actor in self.live.values():
            _kill(self.ray, actor)
        self.live, self.busy = {}, {}


def _kill(ray, actor) -> None:
    try:
        ray.kill(actor, no_restart=True)
    except Exception:  # noqa: BLE001 - already gone
        pass


def _about(pool: WorkerPool | None, ray_info: dict, settings) -> dict:
    """How the items were generated, in the form a local run reports it (summed or maxed over workers)."""
    from engine.backends import resolve_backend_name

    loads, latest = (pool.loads, list(pool.latest.values())) if pool else ([], [])
    first = loads[0] if loads else {}
    caches = [figures["cache"] for figures in latest if figures.get("cache")]
    return {
        "backend": first.get("backend") or resolve_backend_name(settings.backend), "dtype": first.get("dtype"),
        "model": first.get("model"), "requests": pool.requests if pool else 0, "waves": None,
        "scheduler": first.get("scheduler") or ("waves" if settings.scheduler == "auto" else settings.scheduler),
        "startup_seconds": max((load["startup_seconds"] for load in loads), default=0.0),
        "peak_rss_mb": max((f["peak_rss_mb"] for f in latest if f.get("peak_rss_mb") is not None), default=None),
        "kv_cache_mb": max((load["kv_cache_mb"] for load in loads if load.get("kv_cache_mb")), default=None),
        "preemptions": pool.preemptions if pool else None,
        "step_cache": ({"path": first["cache_path"], "hits": sum(c["hits"] for c in caches),
                        "misses": sum(c["misses"] for c in caches)} if first.get("cache_path") else None),
        "ray": ray_info,
    }


def as_engine_error(exc) -> EngineError:
    """A worker's failure as the driver's one-line error: an EngineError as it was, else its type and first line."""
    cause = getattr(exc, "cause", None) or exc
    if isinstance(cause, EngineError):
        return EngineError(first_line(cause))
    return EngineError(f"a Ray worker failed: {type(cause).__name__}: {first_line(cause)}")


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def last_line(exc: BaseException) -> str:
    """The end of a traceback Ray put in a message: the exception that stopped the worker."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()
