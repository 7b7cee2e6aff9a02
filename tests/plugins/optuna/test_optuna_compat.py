"""The Optuna sweeper as a drop-in for hydra-optuna-sweeper: its config keys, its results file, its
documented examples and a lightning-hydra-template search config, run as small Hydra apps without torch:
in-process (conftest's ``train_cli`` with the app's script) unless the process is the point (what it
imports, forked workers, another plugin installed beside ours)."""
import inspect
import math
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.utils import get_class
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from conftest import REPO
from hydra_plugins.sweeplab_optuna_sweeper._build import build_sampler
from hydra_plugins.sweeplab_optuna_sweeper._search_space import (
    SearchSpaceError,
    distributions_from_dicts,
    load_custom_search_space,
)
from hydra_plugins.sweeplab_optuna_sweeper._study import StudyError, describe_storage, open_storage, write_results
from hydra_plugins.sweeplab_optuna_sweeper.config import (
    PRUNERS,
    SAMPLERS,
    GridSamplerConfig,
    OptunaSweeperConf,
    TPESamplerConfig,
)
from hydra_plugins.sweeplab_optuna_sweeper.target_check import OUR_CLASS

APPS = REPO / "tests" / "apps"
EXAMPLES = APPS / "optuna_examples"


# ---------------------------------------------------------------- config keys


@pytest.mark.parametrize("name", sorted(SAMPLERS) + [f"pruner:{name}" for name in sorted(PRUNERS)])
def test_each_sampler_and_pruner_option_lists_every_argument_with_optunas_default(name):
    node = PRUNERS[name.split(":")[1]] if name.startswith("pruner:") else SAMPLERS[name]
    fields = {key: value for key, value in OmegaConf.to_container(OmegaConf.structured(node)).items()
              if not key.startswith("_")}
    parameters = inspect.signature(get_class(OmegaConf.structured(node)._target_)).parameters
    parameters = {key: p for key, p in parameters.items() if key != "search_space"}  # the sweeper's part
    assert set(fields) == set(parameters)
    for key, parameter in parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            assert fields[key] == parameter.default, key


def test_the_grid_sampler_is_partial_as_in_hydra_optuna_sweeper_and_gets_the_grid():
    node = OmegaConf.structured(GridSamplerConfig)
    assert node._partial_ is True
    sampler = build_sampler(node, seed=0, grid={"x": [1, 2], "z": ["foo", "bar"]})
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_int("x", 1, 2) + len(t.suggest_categorical("z", ["foo", "bar"])), n_trials=4)
    tried = sorted((t.params["x"], t.params["z"]) for t in study.trials)
    assert tried == [(1, "bar"), (1, "foo"), (2, "bar"), (2, "foo")]


def test_an_argument_the_sampler_does_not_take_gives_one_line_with_the_fix():
    node = OmegaConf.merge(OmegaConf.structured(TPESamplerConfig), {"_target_": "optuna.samplers.RandomSampler"})
    with pytest.raises(StudyError) as info:
        build_sampler(node, seed=0, grid=None)
    message = str(info.value)
    assert message.startswith("hydra.sweeper.sampler: cannot build optuna.samplers.RandomSampler: TypeError:")
    assert "unexpected keyword argument" in message and "hydra/sweeper/sampler=NAME" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "spec, expected",
    [  # hydra-optuna-sweeper's own table, in Optuna's current distributions
        ({"type": "categorical", "choices": [1, 2, 3]}, CategoricalDistribution((1, 2, 3))),
        ({"type": "int", "low": 0, "high": 10}, IntDistribution(0, 10)),
        ({"type": "int", "low": 0, "high": 10, "step": 2}, IntDistribution(0, 10, step=2)),
        ({"type": "int", "low": 1, "high": 100, "log": True}, IntDistribution(1, 100, log=True)),
        ({"type": "float", "low": 0, "high": 1}, FloatDistribution(0, 1)),
        ({"type": "float", "low": 0, "high": 10, "step": 2}, FloatDistribution(0, 10, step=2)),
        ({"type": "float", "low": 1, "high": 100, "log": True}, FloatDistribution(1, 100, log=True)),
    ],
)
def test_the_older_search_space_dict_form(spec, expected):
    assert distributions_from_dicts({"key": spec}) == {"key": expected}


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"type": "normal", "low": 0, "high": 1},
         "hydra.sweeper.search_space.key.type=normal: must be int, float or categorical"),
        ({"type": "float", "low": 0}, "hydra.sweeper.search_space.key: type float needs low and high"),
        ({"type": "categorical"}, "type categorical needs a non-empty list of choices"),
        ({"type": "float", "low": 0, "high": 1, "lg": True}, "unknown keys ['lg']"),
        ({"type": "float", "low": 0, "high": 1, "log": True}, "hydra.sweeper.search_space.key: "),  # Optuna's reason
    ],
)
def test_a_bad_search_space_entry_gives_one_line(spec, message):
    with pytest.raises(SearchSpaceError) as info:
        distributions_from_dicts({"key": spec})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_custom_search_space_paths(tmp_path, monkeypatch):
    assert load_custom_search_space("os.path.join") is os.path.join
    (tmp_path / "my-space.py").write_text("def configure(cfg, trial):\n    return 'mine'\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # where a script's own dir is
    assert load_custom_search_space(".my-space.configure")(None, None) == "mine"
    with pytest.raises(SearchSpaceError, match=r"custom_search_space=\.my-space\.nothing: no function 'nothing'"):
        load_custom_search_space(".my-space.nothing")
    with pytest.raises(SearchSpaceError, match=r"custom_search_space=nowhere\.configure: "):
        load_custom_search_space("nowhere.configure")


def sweeper_with(**options):
    from hydra_plugins.sweeplab_optuna_sweeper._impl import OptunaSweeperImpl

    random_sampler = {"sampler": {"_target_": "optuna.samplers.RandomSampler"}}
    node = OmegaConf.merge(OmegaConf.structured(OptunaSweeperConf), random_sampler, options)
    return OptunaSweeperImpl(**{key: node[key] for key in node if not key.startswith("_") and key != "defaults"})


def test_n_jobs_is_the_number_of_workers():
    assert sweeper_with(n_jobs=3).n_workers == 3 and sweeper_with().n_workers == 1
    with pytest.raises(StudyError, match=r"hydra.sweeper.n_jobs=2 and n_workers=3: give one of them"):
        sweeper_with(n_jobs=2, n_workers=3)


def test_the_dict_form_search_space_counts_unless_params_are_given_as_in_hydra_optuna_sweeper():
    dict_form = {"x": {"type": "float", "low": 0, "high": 1}}
    assert sweeper_with(search_space=dict_form).search_space == {"x": FloatDistribution(0, 1)}
    assert sweeper_with(search_space=dict_form, params={"y": "choice(1, 2)"}).search_space == {}


def test_optuna_is_this_apps_tuned_sweeper_and_sweeplab_optuna_the_plugins_own():
    store = ConfigStore.instance()  # conftest registered train.py's configs
    assert store.load("hydra/sweeper/sweeplab_optuna.yaml").node.direction == "minimize"
    train_node = store.load("hydra/sweeper/optuna.yaml").node
    # unnamed, a study is named by its start time: a fresh study per run
    assert train_node.direction == "maximize"
    assert OmegaConf.to_container(train_node)["study_name"] == "${now:%Y-%m-%d_%H-%M-%S}"


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # heartbeats
def test_storage_as_a_url_or_a_target_node(tmp_path):
    url = open_storage(f"sqlite:///{tmp_path / 'a.db'}", heartbeat_interval=10, grace_period=30)
    assert isinstance(url, optuna.storages.RDBStorage) and url.heartbeat_interval == 10  # killed trials are found
    rdb = OmegaConf.create({"_target_": "optuna.storages.RDBStorage", "url": f"sqlite:///{tmp_path / 'b.db'}",
                            "heartbeat_interval": 5})
    storage = open_storage(rdb, heartbeat_interval=10, grace_period=30)
    assert storage.heartbeat_interval == 5 and storage.grace_period == 30  # the node's own settings win
    journal = OmegaConf.create({"_target_": "optuna.storages.JournalStorage", "log_storage": {
        "_target_": "optuna.storages.journal.JournalFileBackend", "file_path": str(tmp_path / "j.log")}})
    storage = open_storage(journal, heartbeat_interval=10, grace_period=30)
    optuna.create_study(storage=storage, study_name="s").optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="s", storage=open_storage(journal, 10, 30)).trials) == 2
    assert describe_storage(journal) == f"JournalStorage({tmp_path / 'j.log'})"
    assert describe_storage("postgresql+psycopg2://me:secret@db/optuna") == "postgresql+psycopg2://me:***@db/optuna"


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_storage_node_that_cannot_open_gives_one_line(tmp_path):
    node = OmegaConf.create({"_target_": "optuna.storages.RDBStorage", "url": "nosuchdb://x"})
    with pytest.raises(StudyError) as info:
        open_storage(node, heartbeat_interval=10, grace_period=30)
    message = str(info.value)
    assert message.startswith("storage RDBStorage(nosuchdb://x): cannot open it (") and "\n" not in message


# ---------------------------------------------------------------- the results file


def finished_study(directions, values):
    study = optuna.create_study(directions=directions)
    for value in values:
        trial = study.ask()
        trial.suggest_float("x", -1, 1)
        trial.suggest_categorical("y", ["a", "b"])
        study.tell(trial, value)
    return study


def test_results_file_has_hydra_optuna_sweepers_keys_for_one_objective(tmp_path):
    study = finished_study(["minimize"], [3.0, 1.0, 2.0])
    write_results(study, tmp_path, "sqlite:///x.db", n_trials=3)
    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert list(results)[:3] == ["name", "best_params", "best_value"]
    assert results.name == "optuna"
    assert results.best_params == study.best_trial.params and results.best_value == study.best_value == 1.0


def test_results_file_has_solutions_for_several_objectives(tmp_path):
    study = finished_study(["minimize", "maximize"], [(1.0, 1.0), (2.0, 3.0), (2.0, 0.0)])
    write_results(study, tmp_path, "sqlite:///x.db", n_trials=3)
    results = OmegaConf.load(tmp_path / "optimization_results.yaml")
    assert "best_params" not in results
    assert OmegaConf.to_container(results.solutions) == [{"params": t.params, "values": t.values}
                                                         for t in study.best_trials]
    assert len(results.solutions) == 2


# ---------------------------------------------------------------- the documented examples, end to end


@pytest.fixture
def app_cli(train_cli, hydra_restore_singletons):
    """``train_cli`` for an app that registers nothing of its own, unlike train.py (conftest): Hydra's plugin
    scan again, as a fresh process's, gives Hydra's ``basic`` sweeper and launcher back and, with train.py's
    node gone, the plugin's own ``hydra/sweeper=optuna``; Hydra's fixture restores train.py's after the test."""
    del ConfigStore.instance().repo["hydra"]["sweeper"]["optuna.yaml"]
    Singleton.set_state(Singleton.get_state())
    return lambda script, *args, cwd: train_cli(*args, cwd=cwd, script=script)


def run_app(script, *args, cwd, env=None, python_args=()):
    return subprocess.run([sys.executable, *python_args, str(script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=env)


def results_and_study(sweep_dir, study_name, storage=None):
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    storage = storage or f"sqlite:///{sweep_dir / 'optuna.db'}"
    return results, optuna.load_study(study_name=study_name, storage=storage)


@pytest.mark.slow
def test_sphere_with_params_in_the_config_imports_no_torch(tmp_path):
    result = run_app(EXAMPLES / "sphere.py", "--multirun", f"hydra.sweep.dir={tmp_path}", "hydra.job.chdir=True",
                     "hydra.sweeper.n_trials=3", cwd=tmp_path, python_args=["-X", "importtime"])
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "import time:" in line}
    assert "optuna" in imported and "torch" not in imported
    results, study = results_and_study(tmp_path, "sphere")
    assert results["name"] == "optuna" and len(study.trials) == 3
    assert results["best_params"] == study.best_trial.params and results["best_value"] == study.best_value
    assert set(results["best_params"]) == {"x", "y"}
    assert "storage null: using sqlite:///" in result.stdout


@pytest.mark.slow
def test_sphere_with_params_on_the_command_line_stores_fixed_ones_as_user_attrs(tmp_path, app_cli):
    storage = f"sqlite:///{tmp_path / 'test.db'}"
    result = app_cli(EXAMPLES / "sphere.py", "--multirun", f"hydra.sweep.dir={tmp_path}", "hydra.job.chdir=True",
                     "hydra.sweeper.n_trials=3", f"hydra.sweeper.storage={storage}",
                     "hydra.sweeper.study_name=test-optuna-example", "hydra/sweeper/sampler=tpe",
                     "hydra.sweeper.sampler.seed=123", "~z", "x=choice(0, 1, 2)", "y=0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results, study = results_and_study(tmp_path, "test-optuna-example", storage)
    assert results["best_params"] == study.best_trial.params and set(study.best_trial.params) == {"x"}
    assert results["best_value"] == study.best_value == study.best_trial.params["x"] ** 2
    assert all(t.user_attrs["y"] == "0" and t.user_attrs["~z"] is not None for t in study.trials)


@pytest.mark.slow
def test_grid_sampler_with_partial_runs_each_combination(tmp_path, app_cli):
    result = app_cli(EXAMPLES / "sphere.py", "--multirun", f"hydra.sweep.dir={tmp_path}",
                     "hydra/sweeper/sampler=grid", "hydra.sweeper.n_trials=10", "x=choice(-1, 1)",
                     "y=range(-1.0, 1.0, step=1)", "z=choice(foo, bar)", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results, study = results_and_study(tmp_path, "sphere")
    combinations = {(t.params["x"], t.params["y"], t.params["z"]) for t in study.trials}
    assert len(study.trials) == len(combinations) == 8  # n_trials 10 -> the grid's 8
    assert results["best_value"] == 1 and abs(results["best_params"]["x"]) == 1 and results["best_params"]["y"] == 0


@pytest.mark.slow
def test_multi_objective_example_writes_the_pareto_solutions(tmp_path, app_cli):
    result = app_cli(EXAMPLES / "multi-objective.py", "--multirun", f"hydra.sweep.dir={tmp_path}",
                     "hydra.sweeper.n_trials=3", "hydra/sweeper/sampler=random", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results, study = results_and_study(tmp_path, "multi-objective")
    assert results["solutions"] == [{"params": t.params, "values": t.values} for t in study.best_trials]
    for solution in results["solutions"]:
        assert solution["params"]["x"] % 0.5 == 0 and solution["params"]["y"] % 0.5 == 0


@pytest.mark.slow
def test_custom_search_space_example(tmp_path, app_cli):
    result = app_cli(EXAMPLES / "custom-search-space-objective.py", "--multirun", f"hydra.sweep.dir={tmp_path}",
                     "hydra.job.chdir=True", "hydra.sweeper.n_trials=3", "hydra/sweeper/sampler=random",
                     "max_z_difference_from_x=0.3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    results, study = results_and_study(tmp_path, "custom-search-space")
    assert results["best_params"] == study.best_trial.params
    for trial in study.trials:
        assert set(trial.params) == {"x", "y", "z", "+w"}
        assert abs(trial.params["x"] - trial.params["z"]) <= 0.3 and 0 <= trial.params["+w"] <= 1
        assert math.isclose(trial.value, sum(v**2 for v in trial.params.values()))


@pytest.mark.slow
@pytest.mark.parametrize("max_failure_rate", [0.5, 1.0])
def test_max_failure_rate_example(tmp_path, max_failure_rate):
    result = run_app(EXAMPLES / "sphere.py", "--multirun", f"hydra.sweep.dir={tmp_path}", "hydra.sweeper.n_trials=6",
                     "hydra.sweeper.n_jobs=2", "hydra/sweeper/sampler=random",
                     f"hydra.sweeper.max_failure_rate={max_failure_rate}", "error=true", cwd=tmp_path)
    _, study = results_and_study(tmp_path, "sphere")
    assert all(t.state.name == "FAIL" for t in study.trials)
    if max_failure_rate < 1:  # more than half of 6 failed: the study stops and says why
        assert result.returncode != 0
        assert "RuntimeError: cfg.error is True" in result.stderr and "Traceback" not in result.stderr
        assert 4 <= len(study.trials) < 6
    else:
        assert result.returncode == 0, result.stderr[-3000:]
        assert "RuntimeError: cfg.error is True" not in result.stderr and len(study.trials) == 6


LIGHTNING_TRAIN = APPS / "lightning_template" / "train.py"


@pytest.mark.slow
def test_lightning_template_hparams_search_with_its_target_line_says_what_to_change(tmp_path, app_cli):
    result = app_cli(LIGHTNING_TRAIN, "hparams_search=mnist_optuna", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "hydra.sweeper._target_=hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper: "
        "hydra-optuna-sweeper is not installed; to run sweeplab's Optuna sweeper change that line to "
        f"`_target_: {OUR_CLASS}` or delete it"]


@pytest.mark.slow
def test_lightning_template_hparams_search_with_our_target_line(tmp_path, app_cli):
    result = app_cli(LIGHTNING_TRAIN, "hparams_search=mnist_optuna", f"hydra.sweeper._target_={OUR_CLASS}",
                     "hydra.sweeper.n_trials=3", "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "study_name null: named 'train' after the app" in result.stdout
    results, study = results_and_study(tmp_path / "sweep", "train")
    assert study.direction.name == "MAXIMIZE" and len(study.trials) == 3
    assert results["best_params"] == study.best_trial.params and results["best_value"] == study.best_value
    assert set(results["best_params"]) == {"model.optimizer.lr", "datamodule.batch_size", "model.net.lin1_size",
                                           "model.net.lin2_size", "model.net.lin3_size"}


def write_stand_in_official_plugin(root: Path) -> None:
    """A package where hydra-optuna-sweeper installs, registering hydra/sweeper=optuna as it does."""
    package = root / "hydra_plugins" / "hydra_optuna_sweeper"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "config.py").write_text(
        "from hydra.core.config_store import ConfigStore\n"
        "ConfigStore.instance().store(group='hydra/sweeper', name='optuna', provider='optuna_sweeper',\n"
        "    node={'_target_': 'hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper'})\n")


@pytest.mark.slow
def test_beside_hydra_optuna_sweeper_each_name_selects_one_plugin(tmp_path):
    write_stand_in_official_plugin(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.environ.get("PYTHONPATH", ""), str(tmp_path / "site")])}

    def sweeper_target(choice):
        result = run_app(EXAMPLES / "sphere.py", f"hydra/sweeper={choice}", "--cfg", "hydra", "-p",
                         "hydra.sweeper._target_", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout.strip()

    assert sweeper_target("optuna") == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper_target("sweeplab_optuna") == OUR_CLASS
