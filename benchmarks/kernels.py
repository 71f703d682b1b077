"""What one seed fixes: the default run repeated, on other CPU kernels and at each precision.

    python benchmarks/kernels.py --runs DIR     # writes docs/results/kernels.json

Why: the same seed is meant to repeat a run, yet two evidence rows measured on different days differed in
the third decimal with the same config and seeds. torch picks its CPU kernels by the instruction sets the
CPU has (AVX2, AVX-512, AMX units for bfloat16), and other kernels round differently. This script runs
``stkd run`` (the default preset, seed 0) in a fresh process per arm, each with the kernels capped as a
CPU without those units would run them (``ONEDNN_MAX_CPU_ISA`` for oneDNN's matrix products,
``ATEN_CPU_CAPABILITY`` for torch's vectorised kernels), and once more with seed 1 to set the differences
beside a seed's. It also times one training step of the preset's teacher and student under each cap at
fp32 and bf16 (``stkd.plan.training_plan``'s step: batch cut, forward, loss, backward, AdamW step): where
bfloat16 has no fast units it is slower than fp32, which is why the preset's ``train.precision`` is
``auto``. The arms run one after the other on one machine: their wall times compare.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import machine_line, save_result, teacher_role

SECTION = "kernels"
NO_AMX = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}
NO_BF16 = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}
AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
#: label -> (kernel caps, ``--set`` overrides): the runs of the default preset
ARMS: dict[str, tuple[dict, list[str]]] = {
    "this machine": ({}, []),
    "this machine, again": ({}, []),
    "this machine, seed 1": ({}, ["train.seed=1"]),
    "this machine, fp32": ({}, ["train.precision=fp32"]),
    "AMX capped away": (NO_AMX, []),
    "AMX capped away, bf16 forced": (NO_AMX, ["train.precision=bf16"]),
    "AVX2 only": (AVX2, []),
}
#: label -> kernel caps: where one training step is timed at each precision
STEP_CAPS: dict[str, dict] = {"this machine": {}, "AMX capped away": NO_AMX,
                              "AMX and AVX512-BF16 capped away": NO_BF16, "AVX2 only": AVX2}
CAP_NAMES = tuple(sorted({k for caps in [*STEP_CAPS.values(), *(c for c, _ in ARMS.values())] for k in caps}))


def clean_env(caps: dict) -> dict:
    """This process's environment with only ``caps`` set among the kernel caps."""
    env = {k: v for k, v in os.environ.items() if k not in CAP_NAMES}
    return {**env, **caps}


def run_arm(label: str, caps: dict, sets: list[str], runs: Path) -> dict:
    """``stkd run`` of the default preset in its own process under ``caps``: test and validation MAE of each
    model, where and at what precision each trained, and the wall time."""
    out = runs / label.replace(", ", "-").replace(" ", "-")
    cmd = [sys.executable, "-m", "stkd", "run", "--quiet", "--out", str(out), "--overwrite",
           *[a for s in sets for a in ("--set", s)]]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=clean_env(caps), check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    metrics = json.loads((out / "metrics.json").read_text())
    models = {name: {"role": m["role"], "test_mae": m["test"]["mae"], "val_mae": m.get("val_mae"),
                     "train_seconds": m.get("train_seconds"), "trained_on": m.get("trained_on")}
              for name, m in metrics["models"].items() if m["role"] != "baseline"}
    return {"arm": label, "caps": caps, "sets": sets, "wall_seconds": wall, "models": models}


STEP_CHILD = """
import json, sys
from stkd.config import parse_config
from stkd.pipeline import prepare_task
from stkd.plan import training_plan
from stkd.presets import default_preset_dict
out = {}
for precision in ("fp32", "bf16"):
    raw = default_preset_dict()
    raw["train"]["precision"] = precision
    raw["distill"].update(augment=[], augment_weight=0.0)  # the plain step (the distilled one adds passes)
    rows = training_plan(prepare_task(parse_config(raw)), students=1)
    out[precision] = {r["role"]: r["step_seconds"] for r in rows}
json.dump(out, sys.stdout)
"""


def time_steps(caps: dict) -> dict:
    """Seconds of one training step of the preset's teacher and student at fp32 and bf16 under ``caps``
    (a fresh process: the caps are read when torch loads)."""
    done = subprocess.run([sys.executable, "-c", STEP_CHILD], env=clean_env(caps), check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", required=True, help="folder for the run directories (created)")
    ap.add_argument("--arms", nargs="*", default=list(ARMS), choices=list(ARMS), help="runs to make (default all)")
    args = ap.parse_args()
    runs = Path(args.runs).absolute()
    runs.mkdir(parents=True, exist_ok=True)
    steps = {}
    for label, caps in STEP_CAPS.items():
        steps[label] = {"caps": caps, "seconds": time_steps(caps)}
        print(f"steps | {label}: {steps[label]['seconds']}", flush=True)
    arms = []
    for label in args.arms:
        caps, sets = ARMS[label]
        arms.append(run_arm(label, caps, sets, runs))
        print(f"run | {label}: {json.dumps({n: round(m['test_mae'], 3) for n, m in arms[-1]['models'].items()})} "
              f"in {arms[-1]['wall_seconds']:.0f} s", flush=True)
    path = save_result(SECTION, "kernels", {"steps": steps, "arms": arms, "load_average": os.getloadavg()[0]},
                       {"arms": args.arms})
    print(render(json.loads(path.read_text())))


# ------------------------------------------------------------------------------------------ rendering
def precision_of(arm: dict) -> str:
    """The precision the arm's models trained at (``fp32``, ``bf16``, or both where they differed)."""
    found = {f.get("precision") for m in arm["models"].values() for f in m.get("trained_on") or []}
    return " / ".join(sorted(p for p in found if p)) or "?"


def caps_words(caps: dict) -> str:
    return ", ".join(f"`{k}={v}`" for k, v in caps.items()) or "none"


def moved(arm: dict, base: dict) -> dict[str, float]:
    """Per model, the relative change of the test MAE from ``base`` (%)."""
    return {n: 100 * (m["test_mae"] - base["models"][n]["test_mae"]) / base["models"][n]["test_mae"]
            for n, m in arm["models"].items() if n in base["models"]}


def verdict_lines(result: dict) -> list[str]:
    """The sentences the numbers give: an exact repeat, kernels against a seed, fp32 across kernels, whether
    distillation's sign holds, and what bf16 costs without its units."""
    arms = {a["arm"]: a for a in result["arms"]}
    lines = []
    base = arms.get("this machine")
    again = arms.get("this machine, again")
    if base and again:
        same = all(again["models"][n]["test_mae"] == m["test_mae"] and again["models"][n]["val_mae"] == m["val_mae"]
                   for n, m in base["models"].items())
        lines.append("- The same seed on the same kernels: " + (
            "every model's test and validation MAE repeated exactly." if same else
            "the scores differed (" + ", ".join(f"`{n}` {v:+.3f} %" for n, v in moved(again, base).items()) + ")."))
    seed = arms.get("this machine, seed 1")
    others = [a for label, a in arms.items() if label not in ("this machine", "this machine, again",
                                                              "this machine, seed 1")]
    if base and others:
        largest = {n: max(abs(moved(a, base)[n]) for a in others) for n in base["models"]}
        text = ("- On other kernels or at another precision (the arms below the first three), the test MAE moved "
                "from the first arm's by at most " + ", ".join(f"{v:.2f} % (`{n}`)" for n, v in largest.items()))
        if seed:
            by_seed = {n: abs(v) for n, v in moved(seed, base).items()}
            within = [n for n in largest if largest[n] < by_seed[n]]
            text += ("; seed 1 moved it by " + ", ".join(f"{v:.2f} % (`{n}`)" for n, v in by_seed.items())
                     + f": the kernels moved {len(within)} of {len(largest)} models less than a change of seed did")
        lines.append(text + ".")
    fp32 = {label: a for label, a in arms.items() if precision_of(a) == "fp32" and "seed" not in label}
    if len(fp32) >= 2:
        first, *rest = fp32.values()
        equal = [a["arm"] for a in rest if all(a["models"][n]["test_mae"] == m["test_mae"]
                                               for n, m in first["models"].items())]
        lines.append(f"- At fp32, {len(equal)} of {len(rest)} other arms repeated the arm `{first['arm']}` exactly"
                     + (f" ({', '.join(f'`{a}`' for a in equal)})" if equal else "") + ".")
    signs = []
    for a in arms.values():
        kd = next((m["test_mae"] for m in a["models"].values() if m["role"] == "student_kd"), None)
        plain = next((m["test_mae"] for m in a["models"].values() if m["role"] == "student_plain"), None)
        if kd is not None and plain is not None:
            signs.append(kd < plain)
    if signs:
        lines.append(f"- The distilled student's test MAE was below the plain student's in {sum(signs)} of "
                     f"{len(signs)} runs.")
    steps = result["steps"]
    slower = {label: s["seconds"]["bf16"]["teacher"] / s["seconds"]["fp32"]["teacher"] for label, s in steps.items()}
    faster = [label for label, r in slower.items() if r < 1]
    lines.append("- The teacher's training step under bf16 against fp32: " + ", ".join(
        f"{r:.2f}x the time ({label})" for label, r in slower.items()) + "; bf16 was faster "
        + (f"only with {', '.join(faster)}" if faster else "under none of the caps") + ".")
    if "AMX capped away, bf16 forced" in arms and "AMX capped away" in arms:
        forced, auto = arms["AMX capped away, bf16 forced"], arms["AMX capped away"]
        lines.append(f"- Without AMX the default run took {forced['wall_seconds'] / 60:.1f} min with bf16 forced and "
                     f"{auto['wall_seconds'] / 60:.1f} min with `train.precision: auto` (which chose "
                     f"{precision_of(auto)}).")
    return lines


def render(result: dict) -> str:
    step_head = ["| kernel caps | where | teacher step fp32 (ms) | bf16 (ms) | student step fp32 (ms) | bf16 (ms) |",
                 "| --- | --- | ---: | ---: | ---: | ---: |"]
    for label, s in result["steps"].items():
        sec = s["seconds"]
        step_head.append(f"| {label} | {caps_words(s['caps'])} | {1e3 * sec['fp32']['teacher']:.1f} | "
                         f"{1e3 * sec['bf16']['teacher']:.1f} | {1e3 * sec['fp32']['student']:.1f} | "
                         f"{1e3 * sec['bf16']['student']:.1f} |")
    names = list(result["arms"][0]["models"])
    run_head = ["| run | kernel caps | precision | " + " | ".join(f"`{n}` test MAE" for n in names)
                + " | teacher val MAE | wall time |",
                "| --- | --- | --- | " + " | ".join("---:" for _ in names) + " | ---: | ---: |"]
    for a in result["arms"]:
        teacher = next(m for m in a["models"].values() if m["role"] == teacher_role(a["models"]))
        run_head.append(f"| {a['arm']} | {caps_words(a['caps'])} | {precision_of(a)} | "
                        + " | ".join(f"{a['models'][n]['test_mae']:.3f}" for n in names)
                        + f" | {teacher['val_mae']:.3f} | {a['wall_seconds'] / 60:.1f} min |")
    return ("### The default run on other kernels (seed 0; `stkd run`, one process per run)\n\n"
            f"Command: `{result['command']}`  \n{machine_line(result)}\n\n"
            "One training step of the default preset's models (median of a few steps, the trainer's whole step):\n\n"
            + "\n".join(step_head) + "\n\nThe default run (`train.precision: auto` unless the run says otherwise):\n\n"
            + "\n".join(run_head) + "\n\n" + "\n".join(verdict_lines(result)) + "\n")


if __name__ == "__main__":
    main()
