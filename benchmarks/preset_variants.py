"""Candidates for the default preset, each run as ``stkd run`` runs it: the earlier preset's teacher under
bf16, and a privileged teacher that also reads the same hours yesterday and last week
(``inputs.lags: [1D, 7D]``; the preset from 2026-12-02 to 2026-12-04, chosen here; ``src/stkd/presets.py`` says
what replaced it and why).

    python benchmarks/preset_variants.py                  # every variant, writes docs/results/preset-variants.json
    python benchmarks/preset_variants.py --only bf16      # one variant (the others' results are kept)

Each variant is the default preset of that time (``common.akl_gwnet_preset``, pinned: the preset has since
moved on, ``src/stkd/presets.py``) with the settings below, run through the CLI
(``stkd run --config VARIANT.yaml --out RUNS/VARIANT --resume --quiet``: a finished run folder is re-scored,
not retrained). The earlier preset (fp32, the teacher reads its window) is the row its own benchmark measured
(``default-run.json`` as it was when this script first ran, kept in this result file with its command).
The choice between them reads the validation MAE of the teacher; the test columns show what a user sees.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

from common import RESULTS, akl_gwnet_preset, command, machine_line, save_result

SECTION = "preset-variants"
# name -> (what changes, function of the preset dict)
def _window_only(c: dict) -> None:
    for t in c["teacher"]:
        t.pop("inputs", None)


def _teacher_epochs(c: dict, epochs: int = 20) -> None:
    """The candidates were compared at the earlier preset's 20 teacher epochs (the preset now trains fewer, to
    fit its time)."""
    for t in c["teacher"]:
        t["epochs"] = epochs


VARIANTS = {
    "bf16": ("every model trains under bfloat16 autocast (train.precision: bf16)",
             lambda c: (c["train"].update(precision="bf16"), _window_only(c), _teacher_epochs(c))),
    "bf16-privileged": ("bf16, and the teacher also reads the same hours yesterday and last week "
                        "(teacher inputs.lags: [1D, 7D]; the student keeps its 12-hour window)",
                        lambda c: (c["train"].update(precision="bf16"), _teacher_epochs(c),
                                   c["teacher"][0].update(inputs={"lags": ["1D", "7D"]}))),
}


def variant_config(name: str) -> dict:
    cfg = akl_gwnet_preset()
    VARIANTS[name][1](cfg)
    return cfg


def model_val(run_dir: Path, name: str) -> float | None:
    """The validation MAE at the kept epoch, from the model's training state."""
    path = run_dir / "models" / name / "last.json"
    return json.loads(path.read_text()).get("best_score") if path.is_file() else None


def run_variant(name: str, runs: Path) -> dict:
    import yaml

    from stkd.cli import main as stkd_main
    from stkd.report import student_summary

    runs.mkdir(parents=True, exist_ok=True)
    cfg_path = runs / f"{name}.yaml"
    cfg_path.write_text(yaml.safe_dump(variant_config(name), sort_keys=False))
    out = runs / name
    rc = stkd_main(["run", "--config", str(cfg_path), "--out", str(out), "--resume", "--quiet"])
    if rc != 0:
        raise SystemExit(f"stkd run failed for {name} with exit status {rc}")
    metrics = json.loads((out / "metrics.json").read_text())
    s = student_summary(metrics)
    m = metrics["models"]
    return {"variant": name, "metrics": {k: m[k] for k in (s["teacher"], s["student_kd"], s["student_plain"])},
            "roles": {"teacher": s["teacher"], "student_kd": s["student_kd"], "student_plain": s["student_plain"]},
            "val_mae": {k: model_val(out, k) for k in (s["teacher"], s["student_kd"], s["student_plain"])},
            "command": command()}


def render(result: dict) -> str:
    lines = ["| variant | what changes | teacher val MAE | teacher test MAE | distilled | plain | teacher ahead of "
             "plain | distillation gain | teacher train s |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    rows = []
    default = result.get("default_run")
    if default is not None:
        rows.append(("fp32", f"the earlier preset (fp32; `{default['command']}` at commit {default['commit']})",
                     default))
    rows += [(r["variant"], VARIANTS[r["variant"]][0], r) for r in result["runs"] if r["variant"] in VARIANTS]
    verdicts = []
    for name, what, r in rows:
        roles, m = r["roles"], r["metrics"]
        t, kd, plain = (m[roles[k]]["test"]["mae"] for k in ("teacher", "student_kd", "student_plain"))
        tval = (r.get("val_mae") or {}).get(roles["teacher"])
        ahead = 100 * (1 - t / plain)
        gain = 100 * (1 - kd / plain)
        lines.append(f"| {name} | {what} | {'n/a' if tval is None else f'{tval:.2f}'} | {t:.2f} | {kd:.2f} | "
                     f"{plain:.2f} | {ahead:+.1f} % | {gain:+.1f} % | {m[roles['teacher']]['train_seconds']:.0f} |")
        kept = (f"the distilled student takes {gain / ahead * 100:.0f} % of that edge" if ahead > 0 and gain >= 0
                else f"the distilled student is {abs(gain):.1f} % {'better' if gain >= 0 else 'worse'} than the plain one")
        verdicts.append(f"- {name}: the teacher is {abs(ahead):.1f} % {'below' if ahead >= 0 else 'above'} the plain "
                        f"student's test MAE; {kept} (one seed: the paired-seed evidence below says whether a gain "
                        "holds).")
    return (f"### Candidates for the default preset (Auckland pedestrian counts, seed 0, 20 teacher epochs)\n\n"
            f"Command: `{result['command']}`  \n{machine_line(result)}; training times were taken on a shared, "
            "loaded machine (they compare nothing)\n\n" + "\n".join(lines) + "\n\n" + "\n".join(verdicts) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=list(VARIANTS))
    ap.add_argument("--runs", type=Path, default=Path("bench-runs/preset-variants"))
    args = ap.parse_args()
    path = RESULTS / f"{SECTION}.json"
    old = json.loads(path.read_text()) if path.is_file() else {"runs": []}
    runs = {r["variant"]: r for r in old["runs"]}
    result = {"runs": [], "default_run": old.get("default_run")}
    default = RESULTS / "default-run.json"
    if result["default_run"] is None and default.is_file():  # the earlier preset, as its benchmark measured it
        d = json.loads(default.read_text())
        from stkd.report import student_summary

        s = student_summary(d["metrics"])
        result["default_run"] = {"metrics": d["metrics"]["models"], "val_mae": {}, "command": d["command"],
                                 "commit": d["versions"]["commit"],
                                 "roles": {k: s[k] for k in ("teacher", "student_kd", "student_plain")}}
    for name in args.only or list(VARIANTS):
        runs[name] = run_variant(name, args.runs)
        result["runs"] = [copy.deepcopy(runs[v]) for v in VARIANTS if v in runs]
        save_result(SECTION, "preset_variants", result, {"only": args.only})
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
