"""The logger group: jobs read back through MLflow's client and TensorBoard's event reader. (That a run
without a logger imports neither package: test_cli.py's single run.)"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

import sweeplab.job.trial
from conftest import TINY, multirun, run_train
from sweeplab.errors import ConfigError
from sweeplab.job.task import run
from sweeplab.job.tracking import SWEEP_ROLE, Tracker
from sweeplab.jobfiles import read_metrics


class FailingTracker(Tracker):
    """A user's tracker (a `_target_` of their own) whose service goes away after the first epoch."""

    def on_epoch_end(self, record) -> None:
        raise ConnectionError("tracking server gone\nsecond line")

    def finish(self, metrics) -> None:
        raise ConnectionError("still gone")


class CtrlCAtEpoch2(Tracker):
    """Ctrl-C during epoch 2's callbacks (after epoch 1 was checkpointed)."""

    def on_epoch_end(self, record) -> None:
        if record.epoch == 2:
            raise KeyboardInterrupt


def mlflow_runs(sweep_dir, experiment: str):
    """The runs in the sweep dir's own store (the default), by job name."""
    return runs_in(f"sqlite:///{sweep_dir / 'mlflow.db'}", experiment)


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow database with its tables and no runs, to copy: creating one runs MLflow's migrations
    (seconds). A new store in a sweep dir is still created by the tests that run train.py."""
    path = tmp_path_factory.mktemp("empty_store") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory, empty_store) -> str:
    """One MLflow database for the tests that name their own tracking URI."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    shutil.copy(empty_store, path)
    return f"sqlite:///{path}"


def runs_in(uri: str, experiment: str):
    """The jobs' runs, without the sweep's parent run."""
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id],
                              order_by=["attributes.run_name"])
    return client, [r for r in runs if r.data.tags.get(SWEEP_ROLE) != "sweep"]


def test_mlflow_one_run_per_job_with_params_history_metrics_status_and_dir(make_cfg, tmp_path, empty_store):
    sweep = tmp_path / "my_sweep"
    sweep.mkdir()
    shutil.copy(empty_store, sweep / "mlflow.db")  # the default store's place: the runs must land in it
    for job, lr in (("0", 0.1), ("1", 0.01)):
        run(make_cfg(*TINY, "logger=mlflow", f"lr={lr}", "epochs=3"), sweep / job)

    client, runs = mlflow_runs(sweep, "my_sweep")
    assert [r.info.run_name for r in runs] == ["0", "1"]
    for r, lr in zip(runs, (0.1, 0.01), strict=True):
        job_dir = sweep / r.info.run_name
        history, metrics = pd.read_csv(job_dir / "history.csv"), read_metrics(job_dir)
        assert r.info.status == "FINISHED"
        assert r.data.tags["status"] == "ok" and r.data.tags["job_dir"] == str(job_dir.resolve())
        assert float(r.data.params["lr"]) == lr
        assert r.data.params["model.width"] == "256"
        assert r.data.params["data._target_"] == "sweeplab.training.data.synthetic_images"
        assert not any(key.startswith("logger") for key in r.data.params)
        steps = client.get_metric_history(r.info.run_id, "val_acc")
        assert [(m.step, m.value) for m in steps] == list(zip(history["epoch"], history["val_acc"], strict=True))
        for name in ("test_acc", "best_val_acc", "wall_seconds", "train_loss"):
            assert r.data.metrics[name] == pytest.approx(metrics[name]), name
        assert int(r.data.params["n_parameters"]) == metrics["params"] and "params" not in r.data.metrics


def test_mlflow_groups_an_optuna_study_under_a_given_uri_and_tags_each_trial(make_cfg, tmp_path, shared_store):
    study = optuna.create_study(study_name="tiny_study", direction="maximize")
    for number in range(2):
        trial = study.ask()
        with sweeplab.job.trial.running(trial):
            run(make_cfg(*TINY, "logger=mlflow", f"logger.mlflow.tracking_uri={shared_store}"),
                tmp_path / "sweep" / str(number))

    _, runs = runs_in(shared_store, "tiny_study")
    assert [(r.data.tags["optuna.study_name"], r.data.tags["optuna.trial_number"]) for r in runs] == [
        ("tiny_study", "0"), ("tiny_study", "1")]
    assert not (tmp_path / "sweep" / "mlflow.db").exists()


def test_a_diverged_job_logs_its_epochs_and_ends_as_a_failed_run(make_cfg, tmp_path, shared_store):
    run(make_cfg(*TINY, "logger=mlflow", f"logger.mlflow.tracking_uri={shared_store}",
                 "logger.mlflow.experiment_name=diverged", "+logger.mlflow.tags.team=7", "epochs=4", "lr=1e12"),
        tmp_path / "job")
    metrics = read_metrics(tmp_path / "job")
    client, (r,) = runs_in(shared_store, "diverged")
    assert metrics["status"] == "diverged"
    assert (r.info.status, r.data.tags["status"], r.data.tags["reason"]) == ("FAILED", "diverged", metrics["reason"])
    assert r.data.tags["team"] == "7"
    epochs = [m.step for m in client.get_metric_history(r.info.run_id, "train_loss")]
    assert epochs == list(range(1, metrics["epochs_completed"] + 1))


def test_an_interrupted_job_is_a_killed_run_and_its_resumed_run_has_every_epoch(
        make_cfg, tmp_path, shared_store, caplog):
    tracking = ["logger=mlflow", f"logger.mlflow.tracking_uri={shared_store}", "logger.mlflow.experiment_name=resumed"]
    overrides = [*TINY, "epochs=3", "checkpoint=true", *tracking]
    with pytest.raises(KeyboardInterrupt):
        run(make_cfg(*overrides, "+logger.stop._target_=test_tracking.CtrlCAtEpoch2"), tmp_path / "job")
    with caplog.at_level(logging.INFO):
        run(make_cfg(*overrides), tmp_path / "job")
    assert "resumed from checkpoint.pt after epoch 1" in caplog.text

    client, runs = runs_in(shared_store, "resumed")
    stopped, resumed = sorted(runs, key=lambda r: r.info.start_time)
    assert (stopped.info.status, stopped.data.tags["status"]) == ("KILLED", "interrupted")
    history = pd.read_csv(tmp_path / "job" / "history.csv")
    steps = client.get_metric_history(resumed.info.run_id, "val_acc")
    assert [(m.step, m.value) for m in steps] == list(zip(history["epoch"], history["val_acc"], strict=True))
    assert (resumed.info.status, len(history)) == ("FINISHED", 3)


def test_tensorboard_events_per_job_with_scalars_and_hparams(make_cfg, tmp_path):
    job_dir = tmp_path / "sweep" / "0"
    run(make_cfg(*TINY, "logger=tensorboard", "lr=0.05", "epochs=3"), job_dir)

    events = EventAccumulator(str(job_dir / "tensorboard"))
    events.Reload()
    history, metrics = pd.read_csv(job_dir / "history.csv"), read_metrics(job_dir)
    val_acc = [(e.step, e.value) for e in events.Scalars("val_acc")]
    epochs = zip(history["epoch"], history["val_acc"], strict=True)
    assert val_acc == [(epoch, pytest.approx(acc)) for epoch, acc in epochs]
    (test_acc,) = events.Scalars("test_acc")
    assert (test_acc.step, test_acc.value) == (3, pytest.approx(metrics["test_acc"]))
    start = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == 0.05
    assert start.hparams["optimizer.name"].string_value == "sgd"


def test_fused_members_are_tracked_each_as_its_own_job(tmp_path):
    multirun(sweeplab.job.task.main, tmp_path, *TINY, "model.width=32", "seed=0,1", "logger=tensorboard",
             "hydra/launcher=fused")
    for job in "01":
        events = EventAccumulator(str(tmp_path / job / "tensorboard"))
        events.Reload()
        history = pd.read_csv(tmp_path / job / "history.csv")
        assert [e.value for e in events.Scalars("val_acc")] == pytest.approx(history["val_acc"].tolist())
        assert events.Scalars("wall_seconds")[0].value == pytest.approx(read_metrics(tmp_path / job)["wall_seconds"])


@pytest.mark.parametrize("override, message", [
    ("logger=mlflow logger.mlflow.tracking_uri=nosuchscheme://x",
     "logger.mlflow.tracking_uri='nosuchscheme://x': cannot open it"),
    ("logger=tensorboard logger.tensorboard.save_dir={file}/tb", "logger.tensorboard: cannot write events to"),
])
def test_a_tracker_that_cannot_start_fails_the_job_before_training(make_cfg, tmp_path, override, message):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    with pytest.raises(ConfigError, match=message) as failure:
        run(make_cfg(*TINY, *override.format(file=a_file).split()), tmp_path / "job")
    assert "\n" not in str(failure.value)
    assert read_metrics(tmp_path / "job")["status"] == "failed"
    assert not (tmp_path / "job" / "history.csv").exists()


def test_a_tracker_failing_mid_run_warns_once_and_the_others_go_on(make_cfg, tmp_path, caplog, shared_store):
    cfg = make_cfg(*TINY, "epochs=3", "logger=many_loggers", f"logger.mlflow.tracking_uri={shared_store}",
                   "logger.mlflow.experiment_name=beside_a_failing_one",
                   "+logger.mine._target_=test_tracking.FailingTracker")
    with caplog.at_level(logging.WARNING, logger="sweeplab.job.tracking"):
        run(cfg, tmp_path / "job")
    warnings = [r.getMessage() for r in caplog.records if r.name == "sweeplab.job.tracking"]
    assert warnings == ["logger.mine stopped logging this job (ConnectionError: tracking server gone); "
                        "the job goes on, its files are complete"]
    assert read_metrics(tmp_path / "job")["status"] == "ok"
    assert len(pd.read_csv(tmp_path / "job" / "history.csv")) == 3
    events = EventAccumulator(str(tmp_path / "job" / "tensorboard"))
    events.Reload()
    assert len(events.Scalars("val_acc")) == 3  # the other trackers went on
    client, (r,) = runs_in(shared_store, "beside_a_failing_one")
    assert (r.info.status, len(client.get_metric_history(r.info.run_id, "val_acc"))) == ("FINISHED", 3)


def test_an_unknown_tracker_argument_is_one_line_before_any_work(make_cfg, tmp_path):
    unknown = r"logger.mlflow.tracking_url: not an argument of sweeplab.job.tracking.MLflowTracker"
    with pytest.raises(ConfigError, match=unknown):
        run(make_cfg(*TINY, "logger=mlflow", "+logger.mlflow.tracking_url=x"), tmp_path)


@pytest.mark.slow
def test_a_parallel_multirun_is_one_experiment_named_after_its_sweep_dir(tmp_path):
    # two pool workers start their first jobs together: both would create the store's tables
    result = run_train("-m", *TINY, "epochs=1", "logger=[mlflow,tensorboard]", "lr=0.1,0.01",
                       "hydra.sweep.dir=outputs/sweeps/grid", "hydra/launcher=pool", "hydra.launcher.n_workers=2",
                       cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sweep = tmp_path / "outputs" / "sweeps" / "grid"
    _, runs = mlflow_runs(sweep, "grid")
    assert [(r.info.run_name, r.data.params["lr"]) for r in runs] == [("0", "0.1"), ("1", "0.01")]
    assert all(list((sweep / job / "tensorboard").glob("events.out.tfevents.*")) for job in "01")


@pytest.mark.slow
def test_a_bad_tracking_uri_is_one_line_and_a_non_zero_exit(tmp_path, train_cli):
    result = train_cli(*TINY, "logger=mlflow", "logger.mlflow.tracking_uri=nosuchscheme://x", cwd=tmp_path)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("logger.mlflow.tracking_uri='nosuchscheme://x'")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr and "epoch 1/" not in result.stdout + result.stderr


@pytest.mark.slow
def test_an_optuna_study_is_one_experiment_with_one_run_per_trial(tmp_path, train_cli):
    result = train_cli("-m", *TINY, "epochs=1", "logger=mlflow", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                       "hydra.sweeper.study_name=tracked", "lr=interval(0.01, 0.1)", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sweep = tmp_path / "outputs" / "sweeps" / "tracked"
    _, runs = mlflow_runs(sweep, "tracked")
    study = optuna.load_study(study_name="tracked", storage=f"sqlite:///{sweep / 'optuna.db'}")
    tracked = {int(r.data.tags["optuna.trial_number"]): float(r.data.params["lr"]) for r in runs}
    assert tracked == {t.number: t.params["lr"] for t in study.trials}


def test_a_grid_is_a_parent_run_with_each_job_nested_under_it(tmp_path):
    multirun(sweeplab.job.task.main, tmp_path / "grid", *TINY, "epochs=1", "logger=mlflow", "lr=0.1,0.01",
             "hydra.mode=MULTIRUN")  # as -m sets it
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'grid' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("grid").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get(SWEEP_ROLE) == "sweep"]
    jobs = [r for r in runs if r is not parent]
    assert sorted(r.info.run_name for r in jobs) == ["0", "1"]
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {parent.info.run_id}
    assert parent.info.run_name == "grid" and parent.info.status == "FINISHED"
