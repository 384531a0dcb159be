"""Results must not depend on the machine: what `auto` dtype means, and what every summary records."""

from engine.backends.vllm import resolve_dtype
from engine.environment import cpu_description, describe

CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu avx2 fma f16c avx512f avx512_bf16 amx_bf16 amx_tile sse4_2
"""


def test_auto_dtype_is_float32_on_cpu_and_left_to_vllm_on_gpu():
    assert resolve_dtype("auto", on_gpu=False) == "float32"
    assert resolve_dtype("auto", on_gpu=True) == "auto"
    assert resolve_dtype("bfloat16", on_gpu=False) == "bfloat16"  # asked for explicitly: kept


def test_cpu_description_keeps_the_model_and_the_kernel_flags_only():
    cpu = cpu_description(CPUINFO)
    assert cpu["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert cpu["flags"] == ["avx2", "fma", "f16c", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    assert "sse4_2" not in cpu["flags"] and "fpu" not in cpu["flags"]


def test_cpu_description_reads_arm_features():
    cpu = cpu_description("processor\t: 0\nFeatures\t: fp asimd sve\nCPU part\t: 0xd40\n")
    assert cpu == {"model": "0xd40", "flags": ["asimd", "sve"]}


def test_describe_names_versions_dtype_and_scheduler():
    import torch

    env = describe("float32", "waves")
    assert env["dtype"] == "float32" and env["scheduler"] == "waves"
    assert env["packages"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert "transformers" in env["packages"] and env["cores"] >= 1 and env["cpu"]["model"]
