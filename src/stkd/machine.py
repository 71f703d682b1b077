"""What a run's numbers depend on besides its config and seed: the CPU kernels torch runs on this machine.

The same seed repeats a run exactly where torch runs the same kernels with the same threads. Another kind of
CPU (AVX2 against AVX-512, with or without AMX bf16 units), another torch, another thread count or a capped
instruction set (``ONEDNN_MAX_CPU_ISA``, ``ATEN_CPU_CAPABILITY``) runs other kernels for the same operations;
their floating-point rounding differs, so training takes a slightly different path and ends at slightly
different scores. ``benchmarks/kernels.py`` measures how much on the default run. So every trained model's
card records the machine it trained on (a resumed model each machine it trained on), the report names them,
and a model resumed on other kernels says so.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

#: The environment variables that cap the instruction sets torch's CPU kernels use (oneDNN's matrix products,
#: ATen's vectorised kernels): set, they change the numbers as another CPU would.
KERNEL_CAPS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


@functools.cache
def _cpu_flags() -> list[str]:
    """The CPU's feature flags on Linux; empty elsewhere (the kernel capability alone then describes it). Read
    once per process: every trainer, plan and scoring asks, and the CPU does not change under them."""
    try:
        return Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return []


def compute_facts() -> dict:
    """This process's compute: cores, architecture, the vector instructions torch's CPU kernels use, AMX bf16
    units where the CPU has them, any cap set on the kernels (:data:`KERNEL_CAPS`), torch's threads and
    version, a GPU. Call it where the work runs (the trainer calls it after setting its threads)."""
    import torch

    flags = _cpu_flags()
    caps = {name: os.environ[name] for name in KERNEL_CAPS if os.environ.get(name)}
    return {"cores": os.cpu_count(), "arch": platform.processor() or platform.machine(),
            "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
            "amx_bf16": ("amx_bf16" in flags) if flags else None, "kernel_caps": caps,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def amx_allowed() -> bool:
    """Whether oneDNN may use AMX units here: the CPU has them and ``ONEDNN_MAX_CPU_ISA`` (or its older name
    ``DNNL_MAX_CPU_ISA``) does not cap the instruction sets below them."""
    if "amx_bf16" not in _cpu_flags():
        return False
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "ALL").upper()
    return cap in ("ALL", "DEFAULT") or "AMX" in cap


def bf16_is_slow(device_type: str) -> bool:
    """Whether bf16 autocast makes training slower than fp32 on ``device_type`` here: a CPU without AMX units
    in use (:func:`amx_allowed`; ``benchmarks/kernels.py`` measured how much slower)."""
    return device_type == "cpu" and not amx_allowed()


def resolve_precision(precision: str, device_type: str) -> tuple[str, str]:
    """``(fp32 | bf16, why)``: the precision the training forward runs at for ``train.precision``.

    ``auto`` is bf16 only where bfloat16 matrix products are fast: a CUDA GPU that supports them, or a CPU
    whose AMX units oneDNN may use. Elsewhere bf16 is slower than fp32, not faster: on this project's 2-core
    machine with AMX capped away the default run took 3.6 min under bf16 against 2.7 min at fp32, and the
    default teacher's training step 1.40x as long under bf16 (0.59x with AMX), 2.5x without AVX512-BF16
    instructions and 25x with AVX2 alone (``benchmarks/kernels.py``). The decision is made from the machine's
    facts, not by timing, so one seed on one machine always makes the same choice."""
    if precision != "auto":
        why = f"train.precision {precision}"
        if precision == "bf16" and bf16_is_slow(device_type):
            why += "; slower than fp32 on this CPU, which has no AMX units in use (auto would pick fp32)"
        return precision, why
    if device_type == "cuda":
        import torch

        if torch.cuda.is_bf16_supported():
            return "bf16", "train.precision auto: this GPU multiplies bfloat16 natively"
        return "fp32", "train.precision auto: this GPU has no fast bfloat16"
    if device_type == "cpu" and amx_allowed():
        return "bf16", "train.precision auto: this CPU's AMX units multiply bfloat16"
    return "fp32", "train.precision auto: no AMX units in use on this CPU, where bfloat16 is slower than fp32"


def same_kernels(a: dict, b: dict) -> bool:
    """Whether two machines' facts (:func:`compute_facts`) run the same kernels the same way: every fact both
    record but the number of cores (which sets nothing once the threads are the same). A trainer's facts add
    the precision it trained at; a scorer's have none, and are compared on the rest."""
    keys = (a.keys() & b.keys()) - {"cores"}
    return all(a[k] == b[k] for k in keys)


def describe(facts: dict, *, threads: bool = True) -> str:
    """``2 CPU cores (x86_64, AVX512, AMX bf16), 2 torch threads, torch 2.13.0+cpu``, with the caps set on the
    kernels and the GPU where there are. ``threads``: False leaves the thread count out (the benchmarks'
    machine line, which set the threads in their command)."""
    isa = str(facts.get("cpu_kernels")) + (", AMX bf16" if facts.get("amx_bf16") else "")
    caps = "".join(f", {k}={v}" for k, v in (facts.get("kernel_caps") or {}).items())
    text = f"{facts.get('cores')} CPU cores ({facts.get('arch')}, {isa}{caps})"
    if threads and facts.get("threads") is not None:
        text += f", {facts['threads']} torch thread{'s' if facts['threads'] != 1 else ''}"
    text += f", torch {facts.get('torch')}" + (f", GPU {facts['gpu']}" if facts.get("gpu") else "")
    return text + (f", training forward at {facts['precision']}" if facts.get("precision") else "")


def add_machine(machines: list[dict], facts: dict) -> list[dict]:
    """``machines`` with ``facts`` appended unless the last one runs the same kernels: a model's training
    sessions, one entry per change of machine."""
    if machines and same_kernels(machines[-1], facts):
        return list(machines)
    return [*machines, facts]


def machine_note(metrics: dict) -> str | None:
    """The report's line on where a run's models trained and were scored (metrics.json's ``trained_on`` of each
    model, in the file's order, and ``scored_on``): one machine in a sentence, or where they differ (a teacher
    from another run, a model resumed elsewhere, models trained side by side at fewer threads than the run
    scored them with) the scorer and the models grouped by where they trained. None for a metrics.json written
    before machines were recorded."""
    scored = metrics.get("scored_on")
    trained = {name: m["trained_on"] for name, m in (metrics.get("models") or {}).items() if m.get("trained_on")}
    every = ([scored] if scored else []) + [f for ms in trained.values() for f in ms]
    if not every:
        return None
    if all(same_kernels(every[0], f) for f in every[1:]):
        done = "trained and scored" if trained and scored else "trained" if trained else "scored"
        return (f"- **Machine**: {done} on {describe(every[-1])}. The same seed repeats these numbers where torch "
                "runs the same CPU kernels with the same threads; another kind of CPU may round differently.")
    groups: dict[str, list[str]] = {}  # where they trained -> the models, in the file's order
    for name, ms in trained.items():
        groups.setdefault(", then on ".join(describe(f) for f in ms), []).append(f"`{name}`")
    parts = ([f"scored on {describe(scored)}"] if scored else []) + [
        f"{listed(names)} trained on {where}" for where, names in groups.items()]
    one_place = len(groups) == 1 and all(len(ms) == 1 for ms in trained.values())
    why = ("the same seed repeats each model's numbers where torch runs the kernels and threads it trained with; "
           "another kind of CPU may round differently" if one_place else
           "not one machine and precision: other CPU kernels may round differently, so the same seed is sure to "
           "repeat each model's numbers only where it trained")
    return "- **Machine**: " + "; ".join(parts) + f". {why[0].upper()}{why[1:]}."


def listed(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c`` (the machine line's models; the default-run benchmark's too)."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
