"""`sweeplab studies`: the notes' claims checked against sweeps whose answers are known."""
from __future__ import annotations

import numpy as np
import pytest

from sweeplab.report.studies import STUDIES, Claim, Config, Study, accuracies_of, verdict, write_studies
from test_report import ok_metrics, write_job

SWEEP = "toy"
LOW, HIGH = Config(SWEEP, {"lr": 0.1}), Config(SWEEP, {"lr": 0.01})


def write_toy_sweep(root, test_by_lr):
    sweep_dir = root / SWEEP
    job = 0
    for lr, tests in test_by_lr.items():
        for seed, test in enumerate(tests):
            write_job(sweep_dir, job, [f"lr={lr}", f"seed={seed}"], ok_metrics(test + 0.01, test))
            job += 1
    (sweep_dir / "multirun.yaml").write_text("{}\n")
    return sweep_dir


@pytest.mark.parametrize(
    "relation, a, b, expected",
    [
        (">", [0.90, 0.91, 0.92], [0.80, 0.81, 0.82], "holds (+10.00 points"),
        (">", [0.80, 0.81, 0.82], [0.90, 0.91, 0.92], "does not hold: the reverse is true (-10.00 points"),
        (">", [0.80, 0.85, 0.90], [0.81, 0.84, 0.89], "not shown: within seed noise (+0.33 points"),
        ("~", [0.80, 0.85, 0.90], [0.81, 0.84, 0.89], "holds: within seed noise"),
        ("~", [0.90, 0.91, 0.92], [0.80, 0.81, 0.82], "does not hold: a real difference (+10.00 points"),
        ("~", [0.9], [0.8, 0.81], "untested: fewer than 2 ok jobs"),
    ],
)
def test_verdicts(relation, a, b, expected):
    claim = Claim("a claim", HIGH, relation, LOW)
    assert verdict(claim, np.array(a), np.array(b)).startswith(expected)


def test_a_config_selects_its_ok_jobs(tmp_path):
    from sweeplab.report.collect import collect

    write_toy_sweep(tmp_path, {0.1: [0.80, 0.81], 0.01: [0.90, 0.92]})
    write_job(tmp_path / SWEEP, 9, ["lr=0.01", "seed=9"], {"status": "failed", "reason": "boom"})
    jobs = collect([tmp_path / SWEEP]).jobs
    np.testing.assert_allclose(sorted(accuracies_of(jobs, HIGH)), [0.90, 0.92])
    np.testing.assert_allclose(sorted(accuracies_of(jobs, LOW)), [0.80, 0.81])


def test_studies_page_puts_the_note_beside_ours_and_judges_each_claim(tmp_path):
    write_toy_sweep(tmp_path / "sweeps", {0.1: [0.80, 0.81, 0.82], 0.01: [0.90, 0.91, 0.92]})
    study = Study("toy", "A toy study", (SWEEP,), ("python train.py -m +sweep=toy",), "The note: one run.",
                  ((LOW, "86.49 %"), (HIGH, "86.9 %")),
                  (Claim("0.01 beats 0.1", HIGH, ">", LOW), Claim("0.01 is as good as 0.1", HIGH, "~", LOW)))
    page = write_studies(tmp_path / "sweeps", tmp_path / "docs", studies=(study,)).read_text()
    assert "| lr=0.1 | 86.49 % | 81.00 ± 1.00 % (n=3) |" in page
    assert "| lr=0.01 | 86.9 % | 91.00 ± 1.00 % (n=3) |" in page
    assert "| 0.01 beats 0.1 | lr=0.01 | lr=0.1 | 91.00 ± 1.00 % (n=3) | 81.00 ± 1.00 % (n=3) | holds (+10.00 points" in page
    assert "| 0.01 is as good as 0.1 |" in page and "does not hold: a real difference" in page
    assert "`python train.py -m +sweep=toy` (toy: 6 jobs in" in page
    assert (tmp_path / "docs" / "studies" / "toy" / "report.html").is_file()
    assert "[studies/toy/report.md](studies/toy/report.md)" in page


def test_every_claim_compares_configs_its_study_sweeps():
    """The catalogue names only sweep dirs of its study and keys that its sweep file sweeps."""
    import yaml

    from conftest import REPO

    for study in STUDIES:
        configs = [c for claim in study.claims for c in (claim.a, claim.b)] + [c for c, _ in study.note_numbers]
        for config in configs:
            assert config.sweep in study.dirs
            sweep_file = yaml.safe_load((REPO / "sweeps" / f"{study.name}.yaml").read_text())
            swept = set(sweep_file["hydra"]["sweeper"]["params"]) | ({"optimizer"} if study.name == "lr" else set())
            assert set(config.values) <= swept, (study.name, config)
