"""``stkd distill --teacher-run RUN --seeds ...``: the distilled and the plain student once per seed from one
teacher, compared by stkd.paired's rule; the seed of the run itself is reproduced exactly, the folder
resumes, and a user's folder is never overwritten."""

from __future__ import annotations

import json

import pytest
import yaml

from stkd.across_seeds import compare, render
from stkd.cli import main
from stkd.paired import MIN_SEEDS

RAW = {"data": {"source": "builtin", "name": "synthetic-traffic", "simulator": {"nodes": 16, "days": 4, "seed": 5}},
       "teacher": {"name": "stid", "params": {"embed_dim": 16, "node_dim": 8, "tod_dim": 8}},
       "student": {"name": "mlp", "params": {"hidden": [16]}},
       "train": {"epochs": 1, "batch_size": 32, "max_batches": 3, "threads": 1},
       "eval": {"latency_repeats": 2, "baselines": ["last"]}}


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """One ``stkd run`` (seed 0): the teacher every seed learns from, and its own students to compare with."""
    tmp = tmp_path_factory.mktemp("seeds")
    cfg = tmp / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(RAW))
    out = tmp / "run"
    assert main(["run", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.mark.slow
def test_every_seed_trains_both_students_from_the_cached_teacher_and_the_comparison_follows_them(teacher_run, tmp_path,
                                                                                               capsys):
    out = tmp_path / "seeds"
    cache = {p: p.read_bytes() for p in (teacher_run / "cache").rglob("*") if p.is_file()}
    assert main(["distill", "--teacher-run", str(teacher_run), "--seeds", "0", "1", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "seeds.json").read_text())
    assert [r["seed"] for r in result["records"]] == [0, 1]
    for r in result["records"]:  # each record is its seed's own run
        models = json.loads((out / f"seed-{r['seed']}" / "metrics.json").read_text())["models"]
        assert r["kd_test"] == models["mlp_kd"]["test"]["mae"] and r["plain_test"] == models["mlp_plain"]["test"]["mae"]
        assert r["kd_val"] == models["mlp_kd"]["val_mae"]
        assert (r["teacher"], r["teacher_test"]) == ("stid", models["stid"]["test"]["mae"])  # scored beside them
        assert "stid" not in {p.name for p in (out / f"seed-{r['seed']}" / "models").iterdir()}  # not retrained
    assert cache and {p: p.read_bytes() for p in (teacher_run / "cache").rglob("*") if p.is_file()} == cache
    # seed 0 is the teacher run's own seed: its students come out exactly as that run's
    own = json.loads((teacher_run / "metrics.json").read_text())["models"]
    assert result["records"][0]["kd_test"] == own["mlp_kd"]["test"]["mae"]
    assert result["records"][0]["plain_test"] == own["mlp_plain"]["test"]["mae"]
    assert result["records"][0]["kd_test"] != result["records"][1]["kd_test"]  # another seed, another student
    test = result["comparison"]["test"]
    assert not test["established"] and test["why_not"] == f"2 seeds, {MIN_SEEDS} needed"
    assert test["gains"] == pytest.approx([100 * (r["plain_test"] - r["kd_test"]) / r["plain_test"]
                                           for r in result["records"]])
    md = (out / "seeds.md").read_text()
    assert md == render(result) and md in printed
    assert f"Verdict: **not established (2 seeds, {MIN_SEEDS} needed)**" in md
    assert "- The teacher (`stid`, test MAE " in md and "the plain student's mean over the 2 seeds" in md
    # how closely each seed's students follow the teacher, from their runs, compared by the same rule
    for r in result["records"]:
        models = json.loads((out / f"seed-{r['seed']}" / "metrics.json").read_text())["models"]
        assert r["to_teacher"] == {"teacher": "stid", "metric": "mae", "kd": models["mlp_kd"]["to_teacher"]["value"],
                                   "plain": models["mlp_plain"]["to_teacher"]["value"]}
    nearer = result["comparison"]["to_teacher"]
    assert nearer["gains"] == pytest.approx([100 * (1 - r["to_teacher"]["kd"] / r["to_teacher"]["plain"])
                                             for r in result["records"]])
    assert "- How closely it follows the teacher (`stid`): the distilled student's forecasts are" in md
    # one run's report calls its gain one seed's, and names the command that says more
    gain_line = next(x for x in (teacher_run / "report.md").read_text().splitlines()
                     if x.startswith("- **Gain from distillation**"))
    assert gain_line.endswith("with distillation from this one seed; `stkd distill --teacher-run RUN --seeds 0 1 2 3 4 "
                              "--out DIR` says whether that holds across seeds).")


@pytest.mark.slow
def test_resume_trains_only_the_seeds_not_yet_done_and_a_folder_is_never_overwritten(teacher_run, tmp_path, capsys):
    out = tmp_path / "seeds"
    argv = ["distill", "--teacher-run", str(teacher_run), "--out", str(out), "--quiet", "--seeds"]
    assert main([*argv, "3"]) == 0
    done = {p: p.read_bytes() for p in (out / "seed-3" / "models").glob("*/*") if p.name in ("model.safetensors",
                                                                                              "log.csv")}
    assert len(done) == 4
    assert main([*argv, "3", "4", "--resume"]) == 0
    assert {p: p.read_bytes() for p in done} == done  # seed 3 was finished: re-scored, not retrained
    assert [r["seed"] for r in json.loads((out / "seeds.json").read_text())["records"]] == [3, 4]
    capsys.readouterr()
    assert main([*argv, "5"]) == 2  # an existing folder without --resume or --overwrite
    assert "already exists and is not empty" in capsys.readouterr().err
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("a user's file")
    assert main(["distill", "--teacher-run", str(teacher_run), "--out", str(mine), "--quiet", "--overwrite",
                 "--seeds", "0"]) == 2
    assert "not an stkd run directory" in capsys.readouterr().err and (mine / "notes.txt").is_file()


def test_bad_seeds_are_refused_before_anything_is_trained(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for seeds, words in ((["1", "1"], "--seeds: give distinct seeds, got [1, 1]"),
                         (["-2"], "--seeds: must be an integer from 0")):
        assert main(["distill", "--teacher-run", str(run), "--out", str(tmp_path / "o"), "--seeds", *seeds]) == 2
        assert words in capsys.readouterr().err
    assert main(["distill", "--teacher-run", str(run), "--out", str(tmp_path / "o"), "--seed", "3",
                 "--seeds", "0", "1"]) == 2
    assert "give --seed (one run) or --seeds (a run per seed), not both" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_an_event_task_s_comparison_counts_a_higher_f1_as_the_gain():
    records = [{"seed": s, "plain_test": 0.50, "kd_test": 0.55, "plain_val": 0.5, "kd_val": 0.52} for s in range(5)]
    got = compare(records, "classify")
    assert got["test"]["mean"] == pytest.approx(10.0) and got["test"]["wins"] == 5
    assert got["val"]["mean"] == pytest.approx(4.0)
    lower = compare(records, "forecast")  # as errors, the same numbers are a loss
    assert lower["test"]["mean"] == pytest.approx(-10.0) and lower["test"]["wins"] == 0
    # agreement with the teacher rises with distillation: a gain, whatever the task's own metric
    agree = [{**r, "to_teacher": {"teacher": "gwnet", "metric": "agreement", "kd": 0.9, "plain": 0.8}} for r in records]
    got = compare(agree, "classify")["to_teacher"]
    assert got["mean"] == pytest.approx(12.5) and got["wins"] == 5 and got["established"]
    assert render({"teacher_run": "t", "task": "classify", "records": agree, "comparison": compare(agree, "classify")}
                  ).endswith("- How closely it follows the teacher (`gwnet`): the distilled student decides the "
                             "teacher's class on 90.0 % of the scored test targets, the plain one on 80.0 %: "
                             "distillation changes that agreement by +12.5 % (95 % interval +12.5 % to +12.5 %; on 5 "
                             "of 5 seeds higher). Verdict: **better**.\n")
    # and their probabilities come nearer the teacher's: 0.10 -> 0.08 is 20 % nearer on every seed
    gaps = [{**r, "to_teacher": {**r["to_teacher"], "kd_gap": 0.08, "plain_gap": 0.10}} for r in agree]
    got = compare(gaps, "classify")
    assert got["probability_gap"]["mean"] == pytest.approx(20.0) and got["probability_gap"]["wins"] == 5
    assert render({"teacher_run": "t", "task": "classify", "records": gaps, "comparison": got}).endswith(
        "Verdict: **better**. Its probabilities are 0.080 from the teacher's (mean total variation), the plain one's "
        "0.100: distillation brings them +20.0 % nearer (95 % interval +20.0 % to +20.0 %; on 5 of 5 seeds nearer). "
        "Verdict: **better**.\n")
    assert "probability_gap" not in compare(agree, "classify")  # records without the gaps: no such comparison
    assert "to_teacher" not in compare(records, "classify")  # runs scored before the field: no line


def test_a_seed_s_scores_are_read_from_its_metrics_and_a_missing_test_score_is_refused():
    """Test scores under ``test``, validation as ``val_<key>``; a score that is not a finite number counts as
    missing: no test score stops the comparison with the seed named, no validation score leaves it out."""
    from stkd.across_seeds import seed_record
    from stkd.errors import STKDError

    def metrics(kd_test, plain_val):
        return {"task": "forecast", "models": {
            "teacher": {"role": "teacher", "params": 100, "test": {"mae": 1.0}, "val_mae": 0.9},
            "stid_kd": {"role": "student_kd", "params": 10, "test": {"mae": kd_test}, "val_mae": 1.1},
            "stid_plain": {"role": "student_plain", "params": 10, "test": {"mae": 1.3}, "val_mae": plain_val}}}

    record = seed_record(3, metrics(1.2, 1.25))
    assert (record["kd_test"], record["plain_test"], record["kd_val"], record["plain_val"]) == (1.2, 1.3, 1.1, 1.25)
    assert seed_record(3, metrics(1.2, float("nan")))["plain_val"] is None
    with pytest.raises(STKDError, match="seed 3: the students have no test mae to compare"):
        seed_record(3, metrics(float("nan"), 1.25))
    # how closely each follows the teacher, with an event student's probability gap where both students have it
    events = metrics(1.2, 1.25)
    for name, (agree, gap) in (("stid_kd", (0.9, 0.05)), ("stid_plain", (0.8, 0.07))):
        events["models"][name]["to_teacher"] = {"teacher": "teacher", "metric": "agreement", "value": agree,
                                                "probability_gap": gap}
    assert seed_record(3, events)["to_teacher"] == {"teacher": "teacher", "metric": "agreement", "kd": 0.9,
                                                    "plain": 0.8, "kd_gap": 0.05, "plain_gap": 0.07}
    del events["models"]["stid_plain"]["to_teacher"]["probability_gap"]  # one without it: agreement only
    assert "kd_gap" not in seed_record(3, events)["to_teacher"]


def test_seeds_md_sets_the_teacher_s_lead_over_the_seeds_beside_the_gain_made():
    """A lead of 5 % on one seed can be 4 % over five: the line gives the lead against the plain students' mean,
    its range seed by seed, and the gain the distilled students made."""
    plains = [45.0, 44.5, 44.4, 44.6, 44.5]
    records = [{"seed": s, "plain_test": p, "kd_test": p - 0.3, "plain_val": 43.0, "kd_val": 42.8,
                "teacher": "stid", "teacher_test": 42.7} for s, p in enumerate(plains)]
    text = render({"teacher_run": "t", "task": "forecast", "records": records,
                   "comparison": compare(records, "forecast")})
    mean = sum(plains) / 5
    per_seed = [100 * (p - 42.7) / p for p in plains]
    assert (f"- The teacher (`stid`, test MAE 42.700) is {100 * (mean - 42.7) / mean:.1f} % below the plain student's "
            f"mean over the 5 seeds (+{min(per_seed):.1f} % to +{max(per_seed):.1f} % seed by seed") in text
    made = sum(100 * 0.3 / p for p in plains) / 5
    assert f"would gain about that much; the distilled students gained {made:.1f} % on average." in text
    # a teacher behind the plain students says so (F1: higher is better)
    events = [{"seed": s, "plain_test": 0.50, "kd_test": 0.51, "plain_val": 0.5, "kd_val": 0.5, "teacher": "gwnet",
               "teacher_test": 0.45} for s in range(5)]
    text = render({"teacher_run": "t", "task": "classify", "records": events,
                   "comparison": compare(events, "classify")})
    assert "The teacher (`gwnet`, test F1 0.450) is 10.0 % below the plain student's mean" in text
    assert "(-10.0 % to -10.0 % seed by seed" in text and "would lose about that much; the distilled students gained 2.0 %" in text
    # records written before the teacher's score was kept: no line
    old = [{k: v for k, v in r.items() if k not in ("teacher", "teacher_test")} for r in records]
    assert "The teacher" not in render({"teacher_run": "t", "task": "forecast", "records": old,
                                        "comparison": compare(old, "forecast")})


def test_seeds_md_says_whether_the_two_students_of_a_seed_started_from_the_same_weights():
    records = [{"seed": s, "plain_test": 45.0, "kd_test": 44.0, "plain_val": 43.0, "kd_val": 42.0} for s in range(5)]
    result = {"teacher_run": "t", "task": "forecast", "records": records, "comparison": compare(records, "forecast")}
    assert "trained from the same initial weights and batches for each seed" in render(result)  # written before init
    text = render({**result, "student_init": "teacher"})
    assert "same initial weights" not in text
    assert ("trained from the same batches (the distilled one starting from its teacher's weights cut to its size, "
            "the plain one from the seed's) for each seed") in text
