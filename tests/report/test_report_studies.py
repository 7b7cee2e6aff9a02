"""`sweeplab studies`: the notes' claims (docs/claims.yaml) checked against sweeps whose answers are known."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import REPO, ok_metrics, write_job
from sweeplab.cli import main as sweeplab_main
from sweeplab.report.compare import UNTESTED_FEW
from sweeplab.report.studies import BadClaimsFile, Claim, Config, load_studies, outcome, sample_of, write_studies

SWEEP = "toy"
LOW, HIGH, OTHER = Config(SWEEP, {"lr": 0.1}), Config(SWEEP, {"lr": 0.01}), Config(SWEEP, {"lr": 0.001})
CLAIMS = REPO / "docs" / "claims.yaml"


def write_toy_sweep(root, test_by_lr):
    sweep_dir = root / SWEEP
    job = 0
    for lr, tests in test_by_lr.items():
        for seed, test in enumerate(tests):
            write_job(sweep_dir, job, [f"lr={lr}", f"seed={seed}"], ok_metrics(test + 0.01, test))
            job += 1
    (sweep_dir / "multirun.yaml").write_text("{}\n")
    return sweep_dir


def write_claims(tmp_path, claims, note_numbers=()):
    """A claims file of one study of the toy sweep: claims as (text, lr of a, relation, lr of b)."""
    study = {"name": "toy", "title": "A toy study", "dirs": [SWEEP], "commands": ["python train.py -m +sweep=toy"],
             "note": "one run each",
             "note_numbers": [{"config": {"sweep": SWEEP, "lr": lr}, "reported": text} for lr, text in note_numbers],
             "claims": [{"claim": text, "a": {"sweep": SWEEP, "lr": a}, "relation": relation,
                         "b": {"sweep": SWEEP, "lr": b}} for text, a, relation, b in claims]}
    path = tmp_path / "claims.yaml"
    path.write_text(yaml.safe_dump({"studies": [study]}, allow_unicode=True))
    return path


@pytest.mark.parametrize(
    "relation, low, high, expected",
    [
        (">", 0.1, 0.9, "holds"),
        (">", -0.9, -0.1, "does not hold: the reverse"),
        (">", -0.2, 0.3, "does not hold: no difference beyond ± 0.5 points"),
        (">", -0.2, 0.9, "undecided"),
        ("~", -0.2, 0.3, "holds"),
        ("~", 0.1, 0.3, "holds: a real difference, but within ± 0.5 points"),
        ("~", 0.6, 0.9, "does not hold: a difference beyond ± 0.5 points"),
        ("~", 0.4, 0.9, "undecided"),  # shown different, not shown beyond the margin
        ("<=", -18.0, -16.0, "holds"),  # a loss is no gain
        ("<=", 0.4, 0.7, "undecided"),  # a gain, not shown beyond the margin
        ("<=", 0.6, 0.9, "does not hold: better by more than 0.5 points"),
        (">=", 0.6, 0.9, "holds"),
        (">=", -0.9, -0.6, "does not hold: worse by more than 0.5 points"),
        (">=", -0.7, -0.2, "undecided"),
    ],
)
def test_what_the_interval_says_of_the_claim(relation, low, high, expected):
    judged = pd.Series({"verdict": "", "ci_low": low, "ci_high": high, "difference": (low + high) / 2,
                        "n_a": 5, "n_b": 5, "variance": 0.5, "df_per_seed": 1.0, "level": 0.05})
    text = outcome(Claim("a claim", HIGH, relation, LOW), judged, margin=0.5)
    assert text == expected or (expected == "undecided" and re.fullmatch(
        r"undecided: ~\d+ seeds per config would likely decide", text))


def test_an_untested_claim_says_why():
    judged = pd.Series({"verdict": UNTESTED_FEW, "ci_low": np.nan, "ci_high": np.nan})
    assert outcome(Claim("a claim", HIGH, "~", LOW), judged, margin=0.5) == UNTESTED_FEW


def test_a_config_selects_its_ok_jobs(tmp_path):
    from sweeplab.report.collect import collect

    write_toy_sweep(tmp_path, {0.1: [0.80, 0.81], 0.01: [0.90, 0.92]})
    write_job(tmp_path / SWEEP, 9, ["lr=0.01", "seed=9"], {"status": "failed", "reason": "boom"})
    jobs = collect([tmp_path / SWEEP]).jobs
    np.testing.assert_allclose(sorted(sample_of(jobs, HIGH).values), [90, 92])
    np.testing.assert_allclose(sorted(sample_of(jobs, LOW).values), [80, 81])
    assert len(sample_of(jobs, Config(SWEEP, {"model.width": 64})).values) == 0  # a key the sweep does not sweep


def test_studies_page_puts_the_note_beside_ours_and_judges_all_claims_as_one_family(tmp_path):
    # per seed: 0.01 is 9.5-10.5 points above 0.1; 0.001 is 0.1-0.2 points below 0.01
    low, high, other = [0.795, 0.81, 0.825], [0.90, 0.91, 0.92], [0.899, 0.908, 0.919]
    write_toy_sweep(tmp_path / "sweeps", {0.1: low, 0.01: high, 0.001: other})
    claims = write_claims(tmp_path, [("0.01 beats 0.1", 0.01, ">", 0.1), ("0.01 equals 0.1", 0.01, "~", 0.1),
                                     ("0.001 is as good as 0.01", 0.001, ">=", 0.01)],
                          note_numbers=[(0.1, "86.49 %"), (0.01, "86.9 %")])
    page = write_studies(tmp_path / "sweeps", tmp_path / "docs", claims).read_text()

    assert "| lr=0.1 | 86.49 % | 81.00 ± 1.50 % (n=3) |" in page
    assert "| lr=0.01 | 86.9 % | 91.00 ± 1.00 % (n=3) |" in page
    assert "| 0.01 beats 0.1 | A > B | lr=0.01 | lr=0.1 | 91.00 ± 1.00 % (n=3) | 81.00 ± 1.50 % (n=3) | +10.00" in page
    overview = [line for line in page.splitlines() if line.startswith("| toy | 0.0")]
    beats, same, close = [line for line in page.splitlines() if line.startswith("| 0.0")]
    assert len(overview) == 3 and overview[0].endswith("| A > B | holds |")
    assert beats.endswith("| A > B | holds |")
    assert same.endswith("| A > B | does not hold: a difference beyond ± 0.5 points |")
    assert close.endswith("| holds |")  # 0.1 to 0.2 below on each seed: not worse by the margin
    # three claims, one family: each interval at alpha / 3, paired on the shared seeds
    differences = (np.array(other) - np.array(high)) * 100
    half = stats.t.ppf(1 - 0.05 / 6, 2) * differences.std(ddof=1) / np.sqrt(3)
    p_close = stats.ttest_rel(np.array(other) * 100, np.array(high) * 100).pvalue
    assert (f"| {differences.mean():+.2f} [{differences.mean() - half:+.2f}, {differences.mean() + half:+.2f}] "
            f"| paired | {p_close:.2g} | {min(1, 3 * p_close):.2g} |") in close
    assert "`python train.py -m +sweep=toy` (toy: 9 jobs, the last invocation in" in page
    assert "The note's 3 claims: holds 2, does not hold 1." in page
    assert "All 3 claims on this page are one family" in page
    assert (tmp_path / "docs" / "studies" / "toy" / "report.html").is_file()
    assert "[studies/toy/report.md](studies/toy/report.md)" in page

    again = write_studies(tmp_path / "nowhere", tmp_path / "docs", claims, from_jobs=True).read_text()
    assert "--from-jobs` on" in again and "(toy: 9 jobs)" in again
    assert [line for line in again.splitlines() if line.startswith("| toy | 0.0")] == overview


def test_an_undecided_claim_says_how_many_seeds_would_decide_it(tmp_path):
    write_toy_sweep(tmp_path / "sweeps", {0.1: [0.80, 0.84, 0.82], 0.01: [0.83, 0.80, 0.84]})
    claims = write_claims(tmp_path, [("0.01 beats 0.1", 0.01, ">", 0.1)])
    page = write_studies(tmp_path / "sweeps", tmp_path / "docs", claims).read_text()
    assert "| inconclusive | undecided: ~" in page and "seeds per config would likely decide |" in page
    seeds = re.search(r"undecided: ~(\d+) seeds", page).group(1)
    assert (f"- toy: 1 undecided claim(s), ~{seeds} seeds per config would likely decide them: "
            f"`python train.py -m +sweep=toy 'seed=range(0,{seeds})' hydra.sweeper.extend=true`") in page


def test_the_claims_file_holds_the_seed_notes_claims_and_each_compares_configs_its_study_sweeps():
    studies = load_studies(CLAIMS)
    assert [study.name for study in studies] == ["neurons", "depth", "activation", "lr", "batch_size", "optimizer"]
    assert sum(len(study.claims) for study in studies) == 17
    for study in studies:
        configs = [c for claim in study.claims for c in (claim.a, claim.b)] + [c for c, _ in study.note_numbers]
        sweep_file = yaml.safe_load((REPO / "sweeps" / f"{study.name}.yaml").read_text())
        swept = set(sweep_file["hydra"]["sweeper"]["params"]) | ({"optimizer"} if study.name == "lr" else set())
        for config in configs:
            assert config.sweep in study.dirs
            assert set(config.values) <= swept, (study.name, config)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[1, 2]", "claims.yaml: expected a top-level 'studies:' list"),
        ("studies: [{name: x, title: t, dirs: [x], commands: [c], note: n, claims: "
         "[{claim: c, a: {sweep: x, lr: 1}, relation: '>>', b: {sweep: x, lr: 2}}]}]",
         "claims.yaml: studies[0].claims[0].relation='>>': must be one of >, ~, >=, <="),
        ("studies: [{name: x, title: t, dirs: [x], commands: [c], note: n, claims: "
         "[{claim: c, a: {sweep: y, lr: 1}, relation: '>', b: {sweep: x, lr: 2}}]}]",
         "claims.yaml: studies[0].claims[0].a={'sweep': 'y', 'lr': 1}: must be a mapping of sweep (one of the "
         "study's dirs: x) and the swept values that pick the config"),
        ("studies: [{name: x, title: t, dirs: [], commands: [c], note: n}]",
         "claims.yaml: studies[0].dirs=[]: must be a non-empty list of strings"),
        ("studies: [", "claims.yaml: not YAML: "),
        (None, "claims.yaml: cannot read the claims file: No such file or directory"),
    ],
)
def test_a_bad_claims_file_is_one_line_naming_the_entry(tmp_path, capsys, text, message):
    claims = tmp_path / "claims.yaml"
    if text is not None:
        claims.write_text(text)
    with pytest.raises(BadClaimsFile, match="^" + re.escape(f"{tmp_path}/{message}")):
        load_studies(claims)
    with pytest.raises(SystemExit) as exit:
        sweeplab_main(["studies", "--claims", str(claims), "--sweeps", str(tmp_path), "--out", str(tmp_path / "d")])
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1 and error.startswith(f"sweeplab studies: error: {tmp_path}/{message}")
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("command", [["report", "somewhere"], ["studies"]])
@pytest.mark.parametrize("margin", ["0", "-1", "nan", "inf", "half"])
def test_the_margin_must_be_a_positive_number_of_points(capsys, command, margin):
    with pytest.raises(SystemExit) as exit:
        sweeplab_main([*command, "--margin", margin])
    assert exit.value.code == 2
    assert f"--margin={margin}: must be a finite number of accuracy points > 0" in capsys.readouterr().err


def test_the_page_names_the_note_tables_that_repeat_each_other_and_the_public_references():
    from sweeplab.report.studies import load_references, same_numbers

    studies = load_studies(CLAIMS)
    assert same_numbers(studies) == ["The seed note's lr and batch_size tables report the same numbers digit for "
                                     "digit (86.49 %, 86.9 %, 86.91 %): at most one of them can be a measurement."]
    assert [reference.test_accuracy for reference in load_references(CLAIMS)] == [0.8833, 0.87]


def test_a_reference_without_a_fraction_is_refused(tmp_path):
    from sweeplab.report.studies import load_references

    path = tmp_path / "claims.yaml"
    path.write_text("studies: []\nreferences: [{what: a table, test_accuracy: 88.33}]\n")
    with pytest.raises(BadClaimsFile, match=r"references\[0\].test_accuracy=88.33: must be a fraction in \(0, 1\]"):
        load_references(path)
