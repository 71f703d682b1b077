"""Tests of stkd.machine: what a run records of the machine, when two machines count as the same kernels, and
which precision ``train.precision: auto`` picks."""

from __future__ import annotations

import pytest
import torch

from stkd import machine
from stkd.machine import add_machine, compute_facts, describe, resolve_precision, same_kernels

AMX = ["fpu", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
NO_AMX = ["fpu", "avx2", "fma"]


@pytest.fixture
def no_caps(monkeypatch):
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"):
        monkeypatch.delenv(name, raising=False)


def test_facts_name_this_processes_kernels_threads_and_torch(no_caps):
    facts = compute_facts()
    assert facts["threads"] == torch.get_num_threads() and facts["torch"] == torch.__version__
    assert facts["cpu_kernels"] == torch.backends.cpu.get_cpu_capability() and facts["kernel_caps"] == {}
    text = describe(facts)
    assert text.startswith(f"{facts['cores']} CPU cores (") and f"torch {torch.__version__}" in text
    assert f"{facts['threads']} torch thread" in text and "torch thread" not in describe(facts, threads=False)


def test_a_cap_on_the_kernels_is_part_of_the_facts(no_caps, monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    capped = compute_facts()
    assert capped["kernel_caps"] == {"ONEDNN_MAX_CPU_ISA": "AVX2"} and "ONEDNN_MAX_CPU_ISA=AVX2" in describe(capped)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert not same_kernels(capped, compute_facts())


def test_same_kernels_ignores_cores_and_facts_one_side_lacks():
    a = {"cores": 2, "cpu_kernels": "AVX512", "threads": 2, "torch": "2.13.0", "precision": "bf16"}
    assert same_kernels(a, {**a, "cores": 16})  # more cores, same threads: the same kernels
    assert same_kernels(a, {k: v for k, v in a.items() if k != "precision"})  # a scorer records no precision
    assert not same_kernels(a, {**a, "threads": 4})
    assert not same_kernels(a, {**a, "cpu_kernels": "AVX2"})
    assert not same_kernels(a, {**a, "precision": "fp32"})


def test_a_models_machines_grow_only_when_the_kernels_change():
    a = {"cpu_kernels": "AVX512", "threads": 2}
    b = {"cpu_kernels": "AVX2", "threads": 2}
    assert add_machine([], a) == [a]
    assert add_machine([a], dict(a)) == [a]
    assert add_machine([a], b) == [a, b]
    assert add_machine([a, b], a) == [a, b, a]  # back on the first machine: a third session, said as such


def test_fixed_precisions_are_kept_whatever_the_machine(monkeypatch, no_caps):
    monkeypatch.setattr(machine, "_cpu_flags", lambda: NO_AMX)
    assert resolve_precision("bf16", "cpu")[0] == "bf16" and resolve_precision("fp32", "cpu")[0] == "fp32"
    assert "slower than fp32 on this CPU" in resolve_precision("bf16", "cpu")[1]  # kept, and said
    monkeypatch.setattr(machine, "_cpu_flags", lambda: AMX)
    assert resolve_precision("bf16", "cpu")[1] == "train.precision bf16"


def test_auto_is_bf16_only_where_amx_units_may_run(monkeypatch, no_caps):
    monkeypatch.setattr(machine, "_cpu_flags", lambda: AMX)
    precision, why = resolve_precision("auto", "cpu")
    assert precision == "bf16" and "AMX" in why
    for cap, expected in (("AVX512_CORE_BF16", "fp32"), ("AVX2", "fp32"), ("AVX512_CORE_AMX", "bf16"),
                          ("avx10_1_512_amx", "bf16"), ("ALL", "bf16")):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert resolve_precision("auto", "cpu")[0] == expected, cap
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setattr(machine, "_cpu_flags", lambda: NO_AMX)
    precision, why = resolve_precision("auto", "cpu")
    assert precision == "fp32" and "slower than fp32" in why
    monkeypatch.setattr(machine, "_cpu_flags", lambda: [])  # not Linux: nothing known, the safe choice
    assert resolve_precision("auto", "cpu")[0] == "fp32"


def test_auto_is_a_precision_the_config_accepts():
    from stkd.config import parse_config

    assert parse_config({"train": {"precision": "auto"}}).train.precision == "auto"


def test_auto_on_a_gpu_follows_its_bfloat16_support(monkeypatch):
    for supported, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda supported=supported: supported)
        precision, why = resolve_precision("auto", "cuda")
        assert precision == expected and "GPU" in why
