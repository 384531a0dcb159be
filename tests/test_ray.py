"""`eval --ray`: items sharded over Ray workers land in one run folder of the same form as a local run.

Tests marked `ray` need Ray installed; two of them start a real local cluster (loopback only, two workers on
the tiny model; 20-35 s each on two cores) and check afterwards that every Ray process they started is gone.
The pool's retry and give-up rules are tested against a stand-in for Ray, in milliseconds.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from engine.errors import EngineError
from engine import EvalSettings, prepare, run_eval
from engine.runs.ray_shards import WorkerPool, as_engine_error, split, worker_resources
from engine.runs.verify import verify_run

pytestmark = pytest.mark.timeout(300)  # a local cluster and two workers start in about 25 s here: whatever hangs fails

BASE = dict(task="arithmetic", strategy="direct", depth=2, limit=12, backend="hf")


def ray_processes() -> set[tuple[int, str]]:
    """Processes on this machine that belong to a Ray installation (daemons and workers), from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "site-packages/ray/" in command or command.startswith("ray::"):
            found.add((int(entry.name), command[:120]))
    return found


@pytest.fixture
def stops_every_ray_process():
    """Fails the test if any Ray process it started outlives it (after a grace period for workers to exit)."""
    before = ray_processes()
    yield
    if "ray" in sys.modules and sys.modules["ray"] is not None and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()
        pytest.fail("the run left its Ray connection open")
    deadline = time.monotonic() + 15
    while (left := ray_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"Ray processes left running: {sorted(left)}"


def read_samples(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "samples.jsonl").read_text(encoding="utf-8").splitlines()]


def listening_addresses(pids: set[int]) -> set[str]:
    """The addresses on which the given processes accept connections."""
    import psutil
    return {c.laddr.ip for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.pid in pids}


@pytest.mark.ray
def test_a_ray_run_has_the_form_and_results_of_a_local_run(tiny_model_dir, tmp_path, stops_every_ray_process):
    import ray
    from engine.runs.ray_shards import _connect, _import_ray

    local = run_eval(EvalSettings(**BASE, model=tiny_model_dir, out=str(tmp_path / "local"),
                                  cache=str(tmp_path / "local.sqlite")), progress=False)
    assert _connect(_import_ray(), "local", 2, say=lambda _: None)  # the start `--ray` makes, held for a look
    try:
        listening = listening_addresses({pid for pid, _ in ray_processes()})
        assert listening and listening <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, listening
        on_ray = run_eval(EvalSettings(**BASE, model=tiny_model_dir, out=str(tmp_path / "ray"),
                                       cache=str(tmp_path / "ray.sqlite"), ray="local", ray_workers=2), progress=False)
        assert ray.is_initialized()  # a cluster the caller connected to is the caller's to leave
    finally:
        ray.shutdown()

    mine, theirs = read_samples(tmp_path / "ray"), {r["id"]: r for r in read_samples(tmp_path / "local")}
    assert sorted(r["id"] for r in mine) == sorted(theirs)  # every item, each exactly once
    for record in mine:  # generated afresh on the workers (own cache file), not copied from the local run
        assert record["answer"] == theirs[record["id"]]["answer"]
        assert [s["outputs"] for s in record["steps"]] == [s["outputs"] for s in theirs[record["id"]]["steps"]]
    assert on_ray["accuracy"] == local["accuracy"]
    assert set(on_ray) == set(local) | {"ray"}
    assert on_ray["ray"] == {"address": "local", "workers": 2, "shards": 8, "retried_shards": 0,
                             "per_worker": {"num_cpus": 1}}
    assert on_ray["backend"] == "hf" and on_ray["dtype"] == local["dtype"] and on_ray["backend_requests"] == 12
    assert on_ray["step_cache"]["misses"] == 12 and on_ray["peak_rss_mb"] > 0 and on_ray["startup_seconds"] > 0
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(p.name for p in (tmp_path / "local").iterdir())
    assert (tmp_path / "ray" / "run.json").read_text() == (tmp_path / "local" / "run.json").read_text()
    assert verify_run(tmp_path / "ray") == ([], 12)


DYING_CHAIN = '''
import os
from pathlib import Path

from engine.chains.nodes import Compute, Sequence, Step
from engine.sampling import SamplingSettings


MARKER = Path({marker!r})
VICTIM = {victim!r}


def trip(state):
    """End this worker's process the first time the victim item gets here, after its answer was generated."""
    if state["question"] == VICTIM and not MARKER.exists():
        MARKER.write_text(str(os.getpid()))
        os._exit(1)
    return state["answer"]


chain = Sequence(
    Step("answer", "direct/answer.jinja", SamplingSettings(max_tokens=16), parse="number"),
    Compute("tripwire", trip, reads={{"answer"}}, output="checked"),
)
'''


@pytest.mark.ray
def test_a_worker_that_dies_mid_run_has_its_shard_retried(tiny_model_dir, tmp_path, stops_every_ray_process):
    import ray  # noqa: F401 - in the dev extra: missing, the test fails rather than skips
    settings = {**BASE, "strategy": None, "limit": 8}
    examples = prepare(EvalSettings(**{**settings, "strategy": "direct"})).examples
    marker = tmp_path / "died"
    chain_file = tmp_path / "dying.py"
    chain_file.write_text(DYING_CHAIN.format(marker=str(marker), victim=examples[5].question), encoding="utf-8")
    settings["chain"] = f"{chain_file}:chain"

    summary = run_eval(EvalSettings(**settings, model=tiny_model_dir, out=str(tmp_path / "run"), ray="local",
                                    ray_workers=2), progress=False)

    assert not sys.modules["ray"].is_initialized()  # the cluster the run started, it stopped
    assert marker.exists()  # one worker really died, on the sixth of eight one-item shards
    assert not Path(f"/proc/{marker.read_text()}").exists()
    ids = [r["id"] for r in read_samples(tmp_path / "run")]
    assert sorted(ids) == sorted(e.id for e in examples) and len(ids) == len(set(ids))
    assert summary["ray"]["retried_shards"] >= 1
    assert summary["step_cache"]["hits"] >= 1  # the retry reused what the dead worker had generated
    assert verify_run(tmp_path / "run") == ([], 8)


def test_without_ray_installed_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(EngineError, match=r"pip install -e '\.\[ray\]'") as caught:
        run_eval(EvalSettings(**BASE, out=str(tmp_path / "run"), ray="local"), progress=False)
    assert "\n" not in str(caught.value)


@pytest.mark.ray
def test_an_address_where_no_cluster_listens_is_named_at_once(tmp_path, stops_every_ray_process):
    import ray  # noqa: F401 - in the dev extra: missing, the test fails rather than skips
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"no Ray cluster answers at 127\.0\.0\.1:1 .*ray start --head") as caught:
        run_eval(EvalSettings(**BASE, out=str(tmp_path / "run"), ray="127.0.0.1:1"), progress=False)
    assert "\n" not in str(caught.value) and time.monotonic() - started < 10


def test_shards_cover_every_item_once_several_per_worker():
    ids = [f"item-{n}" for n in range(12)]
    shards = split(ids, 2)
    assert len(shards) == 8 and {len(s) for s in shards} == {1, 2} and sum(shards, []) == ids
    assert split(ids[:3], 2) == [["item-0"], ["item-1"], ["item-2"]]


def test_each_worker_gets_a_whole_gpu_or_a_cpu_share_that_fits_on_a_node():
    assert worker_resources([{"CPU": 2}], 2) == {"num_cpus": 1}
    assert worker_resources([{"CPU": 16}, {"CPU": 16}], 2) == {"num_cpus": 16}
    assert worker_resources([{"CPU": 8}, {"CPU": 8}], 3) == {"num_cpus": 4}  # 5 each would leave one waiting
    assert worker_resources([{"CPU": 32, "GPU": 4}, {"CPU": 32, "GPU": 4}], 8) == {"num_cpus": 1, "num_gpus": 1}
    with pytest.raises(EngineError, match="has 2 GPUs for 4 workers .*--ray-workers 2"):
        worker_resources([{"CPU": 32, "GPU": 2}], 4)
    with pytest.raises(EngineError, match="has 1 CPUs for 2 workers .*--ray-workers 1"):
        worker_resources([{"CPU": 1}], 2)


class FakeRay:
    """Just enough of Ray for `WorkerPool`: actors answer at once, in this process. A worker "dies" where
    `dies(ids)` says so, and cannot start at all with `init_fails` (Ray reports both as ActorDiedError on the
    call's result); `fails` is an exception the worker's own code raises (Ray's RayTaskError)."""

    class exceptions:
        class RayError(Exception):
            pass

        class ActorDiedError(RayError):
            def __init__(self, message, actor_init_failed=False):
                super().__init__(message)
                self.actor_init_failed = actor_init_failed

        class RayTaskError(RayError):
            def __init__(self, cause):
                super().__init__(f"{type(cause).__name__}: {cause}\ntraceback...")
                self.cause = cause

    def __init__(self, dies=lambda ids: False, fails=None, init_fails=False):
        self.dies, self.fails, self.init_fails, self.started = dies, fails, init_fails, 0

    def remote(self, cls):
        def start(settings, cwd):
            self.started += 1
            return FakeActor(self)

        options = type("Options", (), {"remote": staticmethod(start)})()
        return type("ActorClass", (), {"options": lambda _, **__: options})()

    def wait(self, refs, num_returns=1, timeout=None):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return ref()

    def kill(self, actor, no_restart=True):
        pass


class FakeActor:
    def __init__(self, fake: FakeRay):
        self.fake = fake
        self.load, self.run, self.close = self.method(self.loaded), self.method(self.shard), self.method(lambda: None)

    @staticmethod
    def method(fn):
        """`actor.NAME.remote(*args)` gives a ref; `FakeRay.get(ref)` calls it."""
        return type("Method", (), {"remote": staticmethod(lambda *args: lambda: fn(*args))})()

    def loaded(self):
        if self.fake.init_fails:
            raise self.fake.exceptions.ActorDiedError("The actor died because of an error raised in its creation "
                                                      "task, ray::ShardWorker.__init__()\n  File ...\nModuleNotFoundError: "
                                                      "No module named 'engine'", actor_init_failed=True)
        return {"node": "127.0.0.1", "startup_seconds": 0.1, "backend": "hf", "cache_path": None}

    def shard(self, ids):
        if self.fake.fails:
            raise self.fake.exceptions.RayTaskError(self.fake.fails)
        if self.fake.dies(ids):
            raise self.fake.exceptions.ActorDiedError("The actor died unexpectedly before finishing this task.\n\tpid: 1")
        return {"records": [{"id": i} for i in ids], "requests": len(ids), "peak_rss_mb": 1.0, "cache": None}


def run_pool(fake: FakeRay, seen: list, items: int = 12, workers: int = 2):
    pool = WorkerPool(fake, EvalSettings(**BASE, ray="local", ray_workers=workers), {"num_cpus": 1}, say=lambda _: None)
    try:
        return pool.run(split([f"item-{n}" for n in range(items)], workers), seen.append)
    finally:
        pool.stop()


def test_a_lost_shard_is_retried_and_the_lost_worker_replaced():
    lost, seen = [], []
    fake = FakeRay(dies=lambda ids: "item-5" in ids and not lost and not lost.append(ids))
    records, retried = run_pool(fake, seen)
    assert sorted(r["id"] for r in records) == sorted(f"item-{n}" for n in range(12)) and seen == records
    assert retried == 1 and len(lost) == 1 and fake.started == 3


def test_when_every_worker_died_the_finished_items_are_counted_and_kept():
    fake, seen = FakeRay(dies=lambda ids: "item-5" in ids), []  # a poison item kills every worker that takes it
    with pytest.raises(EngineError, match=r"^every Ray worker died \(the last on items item-4\.\.item-5: The actor "
                                          r"died unexpectedly before finishing this task\.\): 10 of 12 items finished "
                                          r"and are kept in samples\.jsonl; rerun the same command to finish the rest$"):
        run_pool(fake, seen)
    assert fake.started == 4 and len(seen) == 10  # two workers, two replacements; the healthy shards went first


def test_a_worker_that_cannot_start_is_not_replaced_again_and_again():
    fake = FakeRay(init_fails=True)
    with pytest.raises(EngineError, match=r"^a Ray worker could not start \(ModuleNotFoundError: No module named "
                                          r"'engine'\): install this project, in the same Python version, on every node$"):
        run_pool(fake, [])
    assert fake.started == 2


def test_an_error_in_the_workers_code_is_one_line_and_not_retried():
    fake = FakeRay(fails=ValueError("shape mismatch\nmore detail"))
    with pytest.raises(EngineError, match=r"^a Ray worker failed: ValueError: shape mismatch$"):
        run_pool(fake, [])
    assert fake.started == 2
    assert str(as_engine_error(FakeRay.exceptions.RayTaskError(EngineError("bad model 'x': check the name")))) == \
        "bad model 'x': check the name"
