"""eval/bench_gpu.py on the CPU with its tiny model: it runs without vLLM, measures, and compares like with like."""

from __future__ import annotations

import doctest
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "eval" / "bench_gpu.py"

# The GPU machine has no vLLM: make `import vllm` fail in the child, as it would there.
RUN_WITHOUT_VLLM = ("import runpy, sys; sys.modules['vllm'] = None; sys.argv[0] = {script!r}; "
                    "runpy.run_path({script!r}, run_name='__main__')")


def load_script():
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-gpu") / "gpu.json"
    command = [sys.executable, "-c", RUN_WITHOUT_VLLM.format(script=str(SCRIPT)),
               "--device", "cpu", "--tiny", "--repeat", "1", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=SCRIPT.parent.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads(out.read_text())


def test_writes_json_and_prints_a_view_of_it(tiny_run):
    stdout, result = tiny_run
    assert result["device"] == "cpu" and result["tiny"] and result["repeat"] == 1
    assert "engine overhead:" in stdout and f"ratio {result['overhead']['ratio']:.3f}" in stdout
    assert "wrote " in stdout


def test_overhead_compares_identical_greedy_work(tiny_run):
    _, result = tiny_run
    overhead = result["overhead"]
    assert overhead["ratio"] > 0 and math.isfinite(overhead["ratio"])
    assert len(overhead["engine_ids"]) == overhead["requests"] == 8
    assert overhead["engine_ids"] == overhead["raw_ids"]  # same ids out, so the two timings did the same work
    assert overhead["identical_sequences"] == overhead["requests"]
    assert all(len(ids) == overhead["new_tokens"] for ids in overhead["raw_ids"])  # EOS disabled: full length


def test_sweep_rows_have_positive_throughput(tiny_run):
    _, result = tiny_run
    new = result["preset"]["new_tokens"]
    assert [row["batch"] for row in result["sweep"]] == result["preset"]["batches"]
    for row in result["sweep"]:
        assert row["decode_tokens_per_second"]["min"] > 0
        assert row["decoded_tokens"] == row["batch"] * (new - 1)
        assert row["achieved_gbps"] > 0
        assert row["fraction_of_peak"] is None  # no peak bandwidth is known for a CPU


def test_pure_helpers():
    failures, tried = doctest.testmod(load_script())
    assert tried >= 2 and failures == 0


def test_without_a_gpu_it_says_so_in_one_line():
    script = load_script()
    with pytest.raises(SystemExit) as exit_info:
        script.choose_device(None, has_cuda=False)
    assert str(exit_info.value) == "no CUDA GPU here: run this on a GPU machine, or check it with --device cpu --tiny"
    with pytest.raises(SystemExit):
        script.choose_device("cuda:0", has_cuda=False)
    assert script.choose_device("cpu", has_cuda=False) == "cpu"
