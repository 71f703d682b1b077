"""Graph WaveNet's training step on a CPU, before and after each speed change.

    python benchmarks/teacher_step.py     # writes docs/results/teacher-step.json

Los-loop (207 sensors), batch 64, the default Graph WaveNet, one training step (forward, backward, AdamW).
The variants, timed in turn for ``--rounds`` rounds of ``--steps`` steps (the machine's speed drifts) and
reported as medians with the load average:

- ``first``: the graph products as a batched einsum on the concatenated powers, float32 (the issue's
  baseline): the model file of commit ``BEFORE`` with its graph product swapped for that einsum.
- ``BEFORE``: the model file of that commit (one matrix product per graph product), float32 and bf16.
- ``now``: today's model (projection first with Horner's rule, node-major layout, a dense bfloat16
  product for a dense-enough sparse graph, a contiguous gate, a uniform-draw dropout), float32 and bf16.
- the first and today's bf16 step again with two threads (``train.threads``, the machine's 2 cores).

The earlier model files are read with ``git show``, so this script needs the repository's history.
Accuracy under bf16 is a separate question (a training run), not answered here.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time

import torch

from common import save_result, source_at

SECTION = "teacher-step"
BEFORE = "ac59929"  # the last commit with the concatenate-then-Linear diffusion convolution
MODEL_FILE = "src/stkd/models/teachers/gwnet.py"


def einsum_propagate(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The graph product as it was first: sparse ``mm`` for the given graph, a batched einsum otherwise."""
    if a.is_sparse:
        b, n, t, c = x.shape  # [B, N, T, C]
        flat = x.transpose(0, 1).reshape(n, b * t * c)
        return torch.sparse.mm(a, flat).reshape(n, b, t, c).transpose(0, 1)
    return torch.einsum("nm,bmtc->bntc", a, x)


def model_file_at(commit: str):
    """The Graph WaveNet module as it was at ``commit`` (read from git, imported under its own name)."""
    source = source_at(commit, MODEL_FILE, "teacher_step.py")
    spec = importlib.util.spec_from_loader(f"gwnet_at_{commit}", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, f"{commit}:{MODEL_FILE}", "exec"), module.__dict__)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args()
    from stkd.config import DataConfig
    from stkd.data.windows import load_windowed
    from stkd.models.teachers.gwnet import GWNet
    from stkd.steps import model_spec
    from stkd.train import precision_context

    wd = load_windowed(DataConfig(source="builtin", name="los-loop"))
    spec = model_spec(wd)
    batch = wd.batch(wd.starts["train"][:64])
    first = model_file_at(BEFORE)
    first._propagate = einsum_propagate
    before = model_file_at(BEFORE)
    # name -> (model class, precision, threads)
    variants = {"first: einsum, float32": (first.GWNet, "fp32", 1),
                f"{BEFORE}: one product, float32": (before.GWNet, "fp32", 1),
                f"{BEFORE}: one product, bf16": (before.GWNet, "bf16", 1),
                "now: float32": (GWNet, "fp32", 1),
                "now: bf16": (GWNet, "bf16", 1),
                "first: einsum, float32, 2 threads": (first.GWNet, "fp32", 2),
                "now: bf16, 2 threads": (GWNet, "bf16", 2)}
    times: dict[str, list[float]] = {k: [] for k in variants}
    load = [os.getloadavg()[0]]
    params = {}
    for _ in range(args.rounds):
        for name, (cls, precision, threads) in variants.items():
            torch.set_num_threads(threads)
            torch.manual_seed(0)
            model = cls(spec)
            params[name] = sum(p.numel() for p in model.parameters())
            opt = torch.optim.AdamW(model.parameters(), 1e-3)
            autocast = precision_context(precision, torch.device("cpu"))

            def step():
                with autocast():
                    out = model(batch.x, batch.tod, batch.dow)["pred"]
                loss = out.float().abs().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()

            step()  # warm-up
            for _ in range(args.steps):
                t0 = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - t0)
        load.append(os.getloadavg()[0])
    if len(set(params.values())) != 1:
        raise SystemExit(f"the variants differ in size, so they are not the same model: {params}")
    result = {"median_seconds": {k: statistics.median(v) for k, v in times.items()}, "seconds": times,
              "threads": {k: v[2] for k, v in variants.items()}, "load_average": load,
              "params": next(iter(params.values())), "before_commit": BEFORE}
    save_result(SECTION, "teacher_step", result, vars(args))
    print(render({**result, "command": "", "machine": "", "versions": {"stkd": "", "commit": ""}, "date": ""}))


def render(result: dict) -> str:
    med = result["median_seconds"]
    base = next(v for k, v in med.items() if k.startswith("first") and result.get("threads", {}).get(k, 1) == 1)
    rows = ["| variant | threads | median step (s) | speed-up vs the first, one thread |", "| --- | ---: | ---: | ---: |"]
    rows += [f"| {k} | {result.get('threads', {}).get(k, 1)} | {v:.2f} | {base / v:.2f}x |" for k, v in med.items()]
    one_thread = {k: v for k, v in med.items() if result.get("threads", {}).get(k, 1) == 1}
    best = min(one_thread, key=one_thread.__getitem__)
    load = result["load_average"]
    text = (f"### Graph WaveNet training step on a CPU (Los-loop, batch 64, {result['params']:,} parameters)\n\n"
            f"Command: `{result['command']}`  \nMachine: {result['machine']}; load average {min(load):.1f}-{max(load):.1f} "
            f"during the runs; stkd {result['versions']['stkd']} (commit {result['versions']['commit']}), {result['date']}"
            "\n\n" + "\n".join(rows) + f"\n\nFastest on one thread: {best}, {base / one_thread[best]:.2f}x the first step "
            f"({'at least' if base / one_thread[best] >= 2 else 'less than'} the 2x the issue asks for).")
    two = {k: v for k, v in med.items() if result.get("threads", {}).get(k, 1) == 2}
    if len(two) == 2:
        (k0, v0), (k1, v1) = sorted(two.items(), key=lambda kv: -kv[1])
        text += f" With both cores, {k1} takes {v1:.2f} s against {v0:.2f} s for {k0} ({v0 / v1:.2f}x)."
    return text + " Accuracy under bf16 is measured by training runs, not here.\n"


if __name__ == "__main__":
    main()
