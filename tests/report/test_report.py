"""sweeplab report on sweep dirs written here job by job, with numbers whose statistics are known.

conftest's ok_metrics, write_job and write_grid write the files a job writes (see sweeplab.jobfiles).
"""
from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import TINY, multirun, ok_metrics, write_grid, write_job, write_mixed_statuses
from sweeplab.cli import main as sweeplab_main
from sweeplab.job.task import main as train_task
from sweeplab.report.build import write_report
from sweeplab.report.collect import collect
from sweeplab.report.plots import accuracy_vs_param, learning_curves
from sweeplab.report.stats import summarize

SWEEPLAB = Path(sys.executable).parent / "sweeplab"  # the console script `pip install -e .` makes

# ------------------------------------------------------------------ writing job dirs


def summary_row(summary: pd.DataFrame, config: str, sweep: str | None = None) -> pd.Series:
    rows = summary[(summary["config"] == config) & ((summary["sweep"] == sweep) if sweep else True)]
    assert len(rows) == 1, summary[["sweep", "config"]]
    return rows.iloc[0]


# ------------------------------------------------------------------ aggregation


def test_mean_std_min_max_over_seeds_are_the_hand_computed_ones(tmp_path):
    sweep = tmp_path / "lr"
    write_grid(sweep, {0.1: [0.80, 0.82, 0.84], 0.01: [0.50, 0.60, 0.70]})

    report = write_report([sweep], sweep)
    summary = pd.read_csv(sweep / "summary.csv")

    best = summary_row(summary, "lr=0.1")
    assert (best["n"], best["jobs"], best["not_ok"]) == (3, 3, 0)
    assert best["val_mean"] == pytest.approx(0.82)
    assert best["val_std"] == pytest.approx(0.02)  # sample std, ddof=1
    assert (best["val_min"], best["val_max"]) == pytest.approx((0.80, 0.84))
    assert best["test_mean"] == pytest.approx(0.72)  # test_acc_at_best_val: val - 0.1 here
    assert best["test_std"] == pytest.approx(0.02)
    assert best["wall_seconds_mean"] == pytest.approx(11.0)  # 10, 11, 12
    assert best["epochs_mean"] == 3
    other = summary_row(summary, "lr=0.01")
    assert other["val_mean"] == pytest.approx(0.60) and other["val_std"] == pytest.approx(0.10)
    assert "0.820 ± 0.020" in report.text and "0.600 ± 0.100" in report.text


def test_seed_and_the_study_selector_are_not_swept_parameters_constant_overrides_neither(tmp_path):
    sweep = tmp_path / "lr"
    write_grid(sweep, {0.1: [0.8, 0.82], 0.01: [0.7, 0.72]}, extra=("model.width=64",))
    sweeps = collect([sweep])
    assert sweeps.swept == {"lr": ["lr"]}
    assert list(sweeps.jobs["seed"]) == [0, 1, 0, 1]
    assert list(summarize(sweeps.jobs, sweeps.swept)["config"]) == ["lr=0.1", "lr=0.01"]


def test_without_seed_overrides_seed_comes_from_the_config_and_a_repeated_job_counts_once(tmp_path):
    sweep = tmp_path / "repeats"
    for job, (width, val) in enumerate([(64, 0.7), (64, 0.8), (128, 0.9)]):
        write_job(sweep, job, [f"model.width={width}"], ok_metrics(val, val))
    sweeps = collect([sweep])
    summary = summarize(sweeps.jobs, sweeps.swept)
    assert sweeps.swept == {"repeats": ["model.width"]}
    assert list(summary["n"]) == [1, 1]  # jobs 0 and 1 have the same overrides: one job, run twice
    assert list(sweeps.jobs["seed"]) == [0, 0]  # from .hydra/config.yaml


def test_a_sweep_over_seeds_only_is_one_config(tmp_path):
    sweep = tmp_path / "seeds"
    for seed, val in enumerate([0.7, 0.8, 0.9]):
        write_job(sweep, seed, [f"seed={seed}", "lr=0.1"], ok_metrics(val, val))
    report = write_report([sweep], sweep)
    summary = pd.read_csv(sweep / "summary.csv")
    assert list(summary["config"]) == ["(all jobs)"]
    assert (summary["n"][0], summary["val_mean"][0]) == (3, pytest.approx(0.8))
    assert summary["vs_best"][0] == "best"
    assert [path.name for path in report.files if path.suffix == ".png"] == ["curves_seeds.png"]


def test_job_dirs_are_read_in_job_number_order(tmp_path):
    sweep = tmp_path / "lr"
    for job in range(12):
        write_job(sweep, job, [f"lr={0.1 if job % 2 else 0.01}", f"seed={job // 2}"], ok_metrics(0.5, 0.5))
    assert list(collect([sweep]).jobs["job"]) == [str(job) for job in range(12)]  # 10 after 9, not after 1


# ------------------------------------------------------------------ comparisons with the best


def test_each_config_against_the_best_is_an_effect_with_an_interval_a_test_and_a_verdict(tmp_path):
    sweep = tmp_path / "lr"
    best = [0.84, 0.80, 0.86, 0.82]
    close = [0.83, 0.80, 0.84, 0.82]  # 0 to 2 points lower on each seed
    separated = [0.60, 0.61, 0.62, 0.60]
    write_grid(sweep, {0.1: best, 0.01: close, 0.001: separated})  # the same seeds, the same model size

    report = write_report([sweep], sweep)
    summary = pd.read_csv(sweep / "summary.csv")

    assert summary_row(summary, "lr=0.1")["vs_best"] == "best"
    far, near = summary_row(summary, "lr=0.001"), summary_row(summary, "lr=0.01")
    for row, values in ((far, separated), (near, close)):
        paired = stats.ttest_rel(100 * np.array(values), 100 * np.array(best))
        assert row["test"] == "paired"
        assert row["difference"] == pytest.approx(100 * (np.mean(values) - np.mean(best)))
        # the best is picked by the same data: the intervals cover all 3 pairs of configs, each at 0.05 / 3
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(paired.confidence_interval(1 - 0.05 / 3)))
        assert row["p_value"] == pytest.approx(paired.pvalue)
        assert row["p_adjusted"] == pytest.approx(min(1, 3 * paired.pvalue))
    assert far["vs_best"] == "<" and near["vs_best"] == "inconclusive" and near["seeds_needed"] > 4
    markdown = (sweep / "report.md").read_text()
    assert "Bonferroni" in markdown and "simultaneous interval" in markdown
    assert "| -22.25 [" in markdown and "| &lt; best |" in markdown  # < as a character reference
    assert f"| inconclusive: ~{int(near['seeds_needed'])} seeds per config would likely decide |" in markdown
    assert "worse than the best (adjusted p < 0.05): lr=0.001 (-22.25 [" in report.text
    assert "inconclusive, neither shown worse nor shown as good: lr=0.01 (-0.75 [" in report.text
    assert "within noise" not in markdown and "distinguishable" not in markdown


def test_welch_when_the_configs_ran_different_seeds(tmp_path):
    sweep = tmp_path / "lr"
    for job, (lr, seed, val) in enumerate([(0.1, 0, 0.84), (0.1, 1, 0.80), (0.1, 2, 0.86),
                                          (0.01, 3, 0.70), (0.01, 4, 0.72), (0.01, 5, 0.71)]):
        write_job(sweep, job, [f"lr={lr}", f"seed={seed}"], ok_metrics(val, val))
    row = summary_row(pd.read_csv(write_report([sweep], sweep).files[0]), "lr=0.01")
    welch = stats.ttest_ind([70, 72, 71], [84, 80, 86], equal_var=False)
    assert row["test"] == "Welch" and row["p_value"] == pytest.approx(welch.pvalue)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(welch.confidence_interval()))


def test_the_margin_decides_what_counts_as_as_good_as_the_best(tmp_path):
    sweep = tmp_path / "lr"
    # 0.1, 0.1 and 0.2 points below the best on its seeds: equivalent within 0.5 points, not within 0.1
    write_grid(sweep, {0.1: [0.800, 0.820, 0.840], 0.01: [0.799, 0.819, 0.838]})
    default = summary_row(pd.read_csv(write_report([sweep], sweep).files[0]), "lr=0.01")
    assert default["vs_best"] == "≈"
    assert "as good as the best within ± 0.5 points (adjusted TOST p &lt; 0.05): lr=0.01" in \
        (sweep / "report.md").read_text()
    strict = summary_row(pd.read_csv(write_report([sweep], sweep, margin=0.1).files[0]), "lr=0.01")
    assert strict["vs_best"] == "inconclusive"


def test_best_is_the_highest_mean_and_a_single_seed_is_untested(tmp_path):
    sweep = tmp_path / "lr"
    write_grid(sweep, {0.1: [0.95], 0.01: [0.80, 0.82, 0.84], 0.001: [0.5, 0.6]})
    summary = pd.read_csv(write_report([sweep], sweep).files[0])
    assert list(summary["vs_best"]) == ["best", "untested: n<2", "untested: n<2"]
    assert summary["p_value"].isna().all()


def test_no_spread_on_either_side_is_not_a_p_value(tmp_path):
    sweep = tmp_path / "lr"
    write_grid(sweep, {0.1: [0.8, 0.8], 0.01: [0.7, 0.7]})
    summary = pd.read_csv(write_report([sweep], sweep).files[0])
    assert summary_row(summary, "lr=0.01")["vs_best"] == "untested: no seed-to-seed spread"


# ------------------------------------------------------------------ statuses and partial sweeps


def test_every_status_is_counted_and_listed_and_only_ok_jobs_enter_the_statistics(tmp_path):
    sweep = tmp_path / "lr"
    write_mixed_statuses(sweep)

    report = write_report([sweep], sweep)

    summary = pd.read_csv(sweep / "summary.csv")
    first = summary_row(summary, "lr=0.1")
    assert (first["jobs"], first["n"], first["not_ok"]) == (5, 2, 3)
    assert first["val_mean"] == pytest.approx(0.82)
    second = summary_row(summary, "lr=0.01")
    assert (second["jobs"], second["n"], second["not_ok"]) == (3, 1, 2)
    jobs = pd.read_csv(sweep / "jobs.csv")
    assert list(jobs["status"]) == ["ok", "ok", "failed", "diverged", "pruned", "ok", "running", "missing"]
    counts = re.search(r"sweep +ok +diverged +pruned +failed +running +missing +total\n +lr +3 +1 +1 +1 +1 +1 +8",
                       report.text)
    assert counts, report.text
    markdown = (sweep / "report.md").read_text()
    assert "5 of 8 jobs are not ok" in markdown
    for status in ("| failed |", "| diverged |", "| pruned |", "| running |", "| missing |"):
        assert status in markdown
    assert "RuntimeError: CUDA out of memory" in markdown  # the reason, shortened


def test_a_multi_line_reason_stays_on_its_row_of_report_md(tmp_path):
    sweep = tmp_path / "lr"
    write_job(sweep, 0, ["lr=0.1"], ok_metrics(0.8, 0.8))
    write_job(sweep, 1, ["lr=0.01"], {"status": "failed", "reason": "RuntimeError: shapes\ncannot be | multiplied"})
    write_report([sweep], sweep)
    rows = [line for line in (sweep / "report.md").read_text().splitlines() if "RuntimeError" in line]
    assert len(rows) == 1 and rows[0].endswith("| RuntimeError: shapes cannot be &#124; multiplied |"), rows


def test_learning_curves_average_the_ok_jobs_per_epoch(tmp_path):
    sweep = tmp_path / "lr"
    write_job(sweep, 0, ["lr=0.1", "seed=0"], ok_metrics(0.6, 0.6), val_curve=[0.2, 0.4, 0.6])
    write_job(sweep, 1, ["lr=0.1", "seed=1"], ok_metrics(0.8, 0.8), val_curve=[0.4, 0.6, 0.8])
    write_job(sweep, 2, ["lr=0.1", "seed=2"], {"status": "running"}, val_curve=[0.0])  # not averaged in
    write_job(sweep, 3, ["lr=0.01", "seed=0"], ok_metrics(0.5, 0.5), val_curve=[0.1, 0.5])
    sweeps = collect([sweep])
    summary = summarize(sweeps.jobs, sweeps.swept)

    figure = learning_curves(sweeps.histories, sweeps.jobs, summary, "lr")

    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert list(lines) == ["lr=0.1", "lr=0.01"]
    assert list(lines["lr=0.1"].get_ydata()) == pytest.approx([0.3, 0.5, 0.7])
    assert list(lines["lr=0.01"].get_xdata()) == [1, 2]
    # the band is the 95 % interval of the mean over the 2 seeds (std 0.1414 every epoch), and says so
    band = figure.axes[0].collections[0].get_paths()[0].vertices[:, 1]
    half_width = stats.t.ppf(0.975, 1) * np.std([0.2, 0.4], ddof=1) / np.sqrt(2)
    assert (band.min(), band.max()) == pytest.approx((0.3 - half_width, 0.7 + half_width))
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["lr=0.1", "lr=0.01", "95 % CI of the mean"]


def test_error_bars_are_the_95_percent_interval_of_each_mean(tmp_path):
    sweep = tmp_path / "lr"
    write_grid(sweep, {0.1: [0.80, 0.82, 0.84], 0.01: [0.70, 0.75]})
    sweeps = collect([sweep])
    figure = accuracy_vs_param(summarize(sweeps.jobs, sweeps.swept), "lr", sweeps.swept)
    segments = figure.axes[0].containers[0].lines[2][0].get_segments()  # the vertical bars, by lr
    half_widths = sorted((top[1] - bottom[1]) / 2 for bottom, top in segments)
    expected = [stats.t.ppf(0.975, 2) * 0.02 / np.sqrt(3),  # lr=0.1: std 0.02 over 3 seeds
                stats.t.ppf(0.975, 1) * np.std([0.70, 0.75], ddof=1) / np.sqrt(2)]
    assert half_widths == pytest.approx(sorted(expected))
    assert "95 % CI" in figure.get_suptitle()


def test_a_partial_sweep_still_reports(tmp_path):
    sweep = tmp_path / "lr"
    write_job(sweep, 0, ["lr=0.1", "seed=0"], ok_metrics(0.8, 0.7))
    write_job(sweep, 1, ["lr=0.1", "seed=1"], {"status": "running"}, val_curve=[0.5])
    write_job(sweep, 2, ["lr=0.01", "seed=0"], {"status": "running"})
    write_job(sweep, 3, ["lr=0.01", "seed=1"], None)

    report = write_report([sweep], sweep)

    summary = pd.read_csv(sweep / "summary.csv")
    assert list(summary["vs_best"]) == ["best", "no ok jobs"]
    assert list(summary["not_ok"]) == [1, 2]
    assert "1 config(s) without any ok job" in report.text
    assert all(path.is_file() for path in report.files)


def test_a_sweep_where_no_job_finished_ok_still_reports(tmp_path):
    sweep = tmp_path / "lr"
    write_job(sweep, 0, ["lr=0.1"], {"status": "failed", "reason": "boom", "wall_seconds": 0.1})
    write_job(sweep, 1, ["lr=0.01"], None)
    report = write_report([sweep], sweep)
    assert "no job finished ok, so there is nothing to compare" in report.text
    assert (sweep / "report.html").is_file()


# ------------------------------------------------------------------ several sweeps side by side


def test_several_sweeps_share_one_frame_and_their_series_overlay(tmp_path):
    sgd, adam, out = tmp_path / "lr_sgd", tmp_path / "lr_adam", tmp_path / "compare"
    write_grid(sgd, {0.1: [0.80, 0.82, 0.84], 0.01: [0.70, 0.71, 0.72]}, extra=("optimizer=sgd",))
    write_grid(adam, {0.01: [0.60, 0.62, 0.64], 0.001: [0.90, 0.91, 0.92]}, extra=("optimizer=adam",))

    report = write_report([sgd, adam], out)

    summary = pd.read_csv(out / "summary.csv")
    assert list(zip(summary["sweep"], summary["config"], strict=True)) == [
        ("lr_sgd", "lr=0.1"), ("lr_sgd", "lr=0.01"), ("lr_adam", "lr=0.01"), ("lr_adam", "lr=0.001")]
    assert summary_row(summary, "lr=0.01", "lr_adam")["val_mean"] == pytest.approx(0.62)
    assert summary_row(summary, "lr=0.1", "lr_sgd")["vs_best"] == "best"  # each sweep has its own best
    assert summary_row(summary, "lr=0.001", "lr_adam")["vs_best"] == "best"
    markdown = (out / "report.md").read_text()
    assert "## Summary: lr_sgd" in markdown and "## Summary: lr_adam" in markdown
    assert "## Best config of each sweep" in markdown
    assert "across sweeps: best: lr_adam lr=0.001" in report.text
    assert "across sweeps: worse than the best (adjusted p < 0.05): lr_sgd lr=0.1" in report.text
    assert not (sgd / "report.md").exists()  # the combined report is in --out only
    assert re.search(r"sweep +ok +total\n *lr_sgd +6 +6\n *lr_adam +6 +6\n *total +12 +12", report.text)

    sweeps = collect([sgd, adam])
    figure = accuracy_vs_param(summarize(sweeps.jobs, sweeps.swept), "lr", sweeps.swept)
    validation = figure.axes[0]
    assert [container.get_label() for container in validation.containers] == ["lr_sgd", "lr_adam"]
    assert validation.get_xscale() == "log"


def test_a_grid_of_two_parameters_plots_one_series_per_value_of_the_other(tmp_path):
    sweep = tmp_path / "grid"
    job = 0
    for optimizer in ("sgd", "adam"):
        for width in (64, 128, 256):
            for seed in range(2):
                write_job(sweep, job, [f"optimizer={optimizer}", f"model.width={width}", f"seed={seed}"],
                          ok_metrics(0.5 + width / 1000 + seed / 100, 0.5))
                job += 1
    sweeps = collect([sweep])
    summary = summarize(sweeps.jobs, sweeps.swept)
    assert sweeps.swept == {"grid": ["optimizer", "model.width"]}

    by_width = accuracy_vs_param(summary, "model.width", sweeps.swept).axes[0]
    assert [c.get_label() for c in by_width.containers] == ["optimizer=sgd", "optimizer=adam"]
    assert by_width.get_xscale() == "linear"  # 64..256 spans less than 100x
    by_optimizer = accuracy_vs_param(summary, "optimizer", sweeps.swept).axes[0]
    assert [t.get_text() for t in by_optimizer.get_xticklabels()] == ["sgd", "adam"]  # categorical axis
    mean = by_width.containers[0].lines[0].get_ydata()
    assert list(mean) == pytest.approx([0.5 + w / 1000 + 0.005 for w in (64, 128, 256)])


# ------------------------------------------------------------------ files written


def test_html_is_self_contained_with_every_plot_embedded(tmp_path):
    sweep = tmp_path / "lr"
    write_mixed_statuses(sweep)
    report = write_report([sweep], sweep)
    html = (sweep / "report.html").read_text()
    pngs = sorted(path.name for path in report.files if path.suffix == ".png")
    assert pngs == ["accuracy_vs_lr.png", "curves_lr.png"]
    sources = re.findall(r'<img src="([^"]*)"', html)
    assert len(sources) == len(pngs)
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert html.count('<table class="dataframe summary"') == 1


# ------------------------------------------------------------------ the command


def sweeplab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert SWEEPLAB.is_file(), "no sweeplab console script: pip install -e ."
    return subprocess.run([str(SWEEPLAB), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def sweeplab_here(*args: str, capsys: pytest.CaptureFixture) -> subprocess.CompletedProcess:
    """``sweeplab ARGS`` in this process, as the console script calls it (no second start of Python and
    pandas, matplotlib, optuna), in the current dir: its exit status and output."""
    try:
        sweeplab_main(list(args))
        code = 0
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["sweeplab", *args], code, out, err)


def test_the_command_prints_the_summary_and_writes_into_the_sweep_dir(tmp_path):
    sweep = tmp_path / "lr"
    write_grid(sweep, {0.1: [0.80, 0.82, 0.84], 0.01: [0.50, 0.60, 0.70]})
    result = sweeplab("report", "lr", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "0.820 ± 0.020" in result.stdout and "vs best" in result.stdout
    for name in ("summary.csv", "jobs.csv", "report.md", "report.html", "accuracy_vs_lr.png", "curves_lr.png"):
        assert (sweep / name).is_file(), name


def make_empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def make_foreign(tmp_path: Path) -> Path:
    (tmp_path / "foreign" / "src").mkdir(parents=True)
    (tmp_path / "foreign" / "notes.txt").write_text("not a sweep")
    return tmp_path / "foreign"


def make_job_dir(tmp_path: Path) -> Path:
    return write_job(tmp_path / "sweep", 0, ["lr=0.1"], ok_metrics(0.8, 0.8))


BAD_DIRS = [
    (lambda tmp_path: tmp_path / "nope", "no such directory"),
    (make_empty, "empty directory"),
    (make_foreign, "no job dirs in it"),
    (make_job_dir, "this is one job's dir, not a sweep dir"),
]


@pytest.mark.parametrize("make_dir, problem", BAD_DIRS, ids=["nonexistent", "empty", "foreign", "job dir"])
def test_a_dir_that_is_not_a_sweep_is_one_line_and_exit_2(tmp_path, capsys, make_dir, problem):
    bad = make_dir(tmp_path)
    result = sweeplab_here("report", str(bad), capsys=capsys)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"sweeplab report: error: {bad}: {problem}; "
        "a sweep dir holds one dir per job (0/, 1/, ...), each with .hydra/ or metrics.json"
    ]
    assert not (bad / "report.html").exists()


def test_several_dirs_need_out_and_any_bad_one_stops_the_report(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    good = tmp_path / "lr"
    write_grid(good, {0.1: [0.8, 0.82]})
    no_out = sweeplab_here("report", "lr", "lr", capsys=capsys)
    assert no_out.returncode == 2 and "--out" in no_out.stderr and len(no_out.stderr.splitlines()) == 1
    bad = sweeplab_here("report", "lr", "missing", "--out", "both", capsys=capsys)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "sweeplab report: error: missing: no such directory; "
        "a sweep dir holds one dir per job (0/, 1/, ...), each with .hydra/ or metrics.json"
    ]
    assert "Traceback" not in no_out.stderr + bad.stderr
    assert not (tmp_path / "both").exists()


def test_report_of_a_real_multirun(tmp_path, capsys):
    """The jobs' own files, as a grid of train.py writes them (in-process: test_cli.py runs train.py -m)."""
    sweep = tmp_path / "lr_grid"
    multirun(train_task, sweep, "lr=0.1,0.01", "seed=0,1", *TINY)
    capsys.readouterr()

    result = sweeplab_here("report", str(sweep), capsys=capsys)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    summary = pd.read_csv(sweep / "summary.csv")
    assert list(summary["config"]) == ["lr=0.1", "lr=0.01"]
    assert list(summary["n"]) == [2, 2] and list(summary["not_ok"]) == [0, 0]
    jobs = pd.read_csv(sweep / "jobs.csv")
    for config, rows in jobs.groupby("config"):
        assert summary_row(summary, config)["val_mean"] == pytest.approx(rows["best_val_acc"].mean())
    assert "lr=0.1" in result.stdout and "vs best" in result.stdout
    assert (sweep / "accuracy_vs_lr.png").stat().st_size > 1000
    assert (sweep / "curves_" f"{sweep.name}.png").is_file()
