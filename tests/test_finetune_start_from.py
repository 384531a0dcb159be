"""`finetune --start-from ADAPTER`: training continues an adapter's own weights (one adapter again, its rank
kept), so tasks can be added to a shipped adapter in a run that fits a session; a start that cannot be what
was meant is one clear line."""

from __future__ import annotations

import json

import pytest
from test_finetune import small

from engine.cli.main import main
from engine.finetune import finetune


def _weights(folder) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_training_continues_the_adapters_own_weights(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "cache"))
    first = tmp_path / "first"
    finetune(progress=lambda m: None, **small(tmp_path, tiny_model_dir, max_steps=4, eval_every=4, out=str(first)))
    trained = _weights(first / "model")
    assert any(float(t.abs().max()) > 0 for name, t in trained.items() if "lora_B" in name)  # learnt something

    # a nearly frozen step from the adapter ends where it started; the same step from nothing ends at lora_B = 0
    still = dict(max_steps=1, eval_every=1, learning_rate=1e-12, lora_r=4)
    summary = finetune(progress=lambda m: None, **small(tmp_path, tiny_model_dir, start_from=str(first / "model"),
                                                         out=str(tmp_path / "continued"), **still))
    continued = _weights(tmp_path / "continued" / "model")
    assert continued.keys() == trained.keys()
    assert all((continued[name] - trained[name]).abs().max() < 1e-6 for name in trained)
    config = json.loads((tmp_path / "continued" / "model" / "adapter_config.json").read_text())
    assert config["r"] == json.loads((first / "model" / "adapter_config.json").read_text())["r"] != 4  # its rank
    assert summary["settings"]["start_from"] == str(first / "model")
    finetune(progress=lambda m: None, **small(tmp_path, tiny_model_dir, out=str(tmp_path / "fresh"), **still))
    fresh = _weights(tmp_path / "fresh" / "model")
    assert all(float(t.abs().max()) < 1e-6 for name, t in fresh.items() if "lora_B" in name)


def test_a_start_that_cannot_be_meant_is_one_line(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setenv("ENGINE_CACHE", str(tmp_path / "cache"))
    first = tmp_path / "first"
    finetune(progress=lambda m: None, **small(tmp_path, tiny_model_dir, max_steps=2, eval_every=2, out=str(first)))

    def error(*argv):
        code = main(["finetune", "--task", "arithmetic", "--strategy", "stepwise", "--out", str(tmp_path / "x"), *argv])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err, err
        return err.strip().splitlines()[-1]

    assert "is not a LoRA adapter" in error("--model", tiny_model_dir, "--start-from", tiny_model_dir)
    assert f"was trained on {tiny_model_dir}, not on smollm2-135m: pass --model {tiny_model_dir}" in error(
        "--start-from", str(first / "model"))
    assert "--start-from: unknown model 'no-such-adapter'" in error("--start-from", "no-such-adapter")
    assert "continues a LoRA adapter: drop --method full" in error("--method", "full", "--start-from",
                                                                    str(first / "model"))
    assert not (tmp_path / "x").exists()  # refused before any folder or model
