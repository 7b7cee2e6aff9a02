"""A storage password stays where the user put it: never on the console, in a job's ``.hydra/`` files or
in any file the study writes. Jobs get the storage through their process's environment.

One worker runs in-process (conftest's ``train_cli``, which captures all it prints); forked workers print
from processes of their own, so that study runs in a real process whose whole output is captured."""
import optuna
import pytest

from conftest import PG_PASSWORD, TINY, run_train

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("workers, as_node", [(1, False), (2, False), (1, True)], ids=["url", "url-2-workers", "node"])
def test_a_storage_password_appears_in_no_output_and_no_file(tmp_path, postgres, workers, as_node, train_cli):
    sweep_dir = tmp_path / "sweep"
    storage = f"{{_target_:optuna.storages.RDBStorage,url:'{postgres}'}}" if as_node else postgres
    name = f"s{workers}" + ("-node" if as_node else "")  # one database for the module: a study each
    run = train_cli if workers == 1 else run_train
    result = run(
        "-m", "hydra/sweeper=optuna", f"hydra.sweeper.storage={storage}", f"hydra.sweeper.study_name={name}",
        "hydra.sweeper.n_trials=3", f"hydra.sweeper.n_workers={workers}", "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1", "lr=tag(log, interval(0.01, 0.5))", *TINY,
        f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    console = result.stdout + result.stderr
    assert result.returncode == 0, console[-3000:]

    study = optuna.load_study(study_name=name, storage=postgres)
    assert len(study.trials) == 3 and all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    # the jobs reached their trials through the storage: each reported its epochs and its dir
    assert all(t.intermediate_values and "job_dir" in t.user_attrs for t in study.trials)
    assert PG_PASSWORD not in console
    # a launch line is the trial's own overrides, nothing internal
    launches = [line.split(" : ", 1)[1].split() for line in console.splitlines() if "\t#" in line]
    assert len(launches) == 3 and all(words[:-1] == TINY and words[-1].startswith("lr=") for words in launches)
    assert "SWEEPLAB" not in console
    files = [path for path in sweep_dir.rglob("*") if path.is_file()]
    assert len(files) > 3 * 5  # .hydra/ (3 files), metrics, history, log of each job, and the study's files
    assert [path for path in files if PG_PASSWORD.encode() in path.read_bytes()] == []
    assert "${oc.env:SWEEPLAB_STORAGE}" in (sweep_dir / "0" / ".hydra" / "hydra.yaml").read_text()
