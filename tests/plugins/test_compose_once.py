"""sweeplab's launchers (basic and fused) compose once per group of jobs that differ only in values they
set, and derive each job's config from that (``sweeplab.sweep.compose``): every job's config, Hydra config and
``.hydra/`` files equal
what Hydra's own ``load_sweep_config`` composes, for every study in sweeps/ and for grids with
interpolations. Nothing is left out of the comparison: in one process, even ``${now:...}`` resolves to
the same time (Hydra copies the sweep's resolver cache into every job's config)."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterator

import pytest
from hydra._internal.hydra import Hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from conftest import REPO
from hydra_plugins.sweeplab_fused_launcher._fuse import open_job, task_config
from sweeplab.sweep.compose import Composer

STUDIES = sorted(path.stem for path in (REPO / "sweeps").glob("*.yaml"))
SMALL = ["data=synthetic", "epochs=1"]


@pytest.fixture
def hydra() -> Iterator[Hydra]:
    """Hydra as ``train.py`` creates it. (Not ``hydra_restore_singletons``: its plugin rescan would put
    Hydra's basic sweeper back in the place of this app's grid sweeper for the tests after.)"""
    saved = HydraConfig.instance().cfg
    hydra = Hydra.create_main_hydra_file_or_module(
        calling_file=str(REPO / "train.py"), calling_module=None, config_path="conf", job_name="train")
    yield hydra
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = saved


def sweep_config(hydra: Hydra, arguments: list[str]) -> DictConfig:
    """The sweep's config (what a launcher gets), as ``train.py -m ARGUMENTS`` composes it."""
    cfg = hydra.compose_config("train", arguments, run_mode=RunMode.MULTIRUN, with_log_configuration=False)
    HydraConfig.instance().set_config(cfg)
    # a launcher resolves the sweep dir before its first job; every job's config gets a copy of this resolver
    # cache, so a ${now:} in it is one time for all (left unresolved, each config would read its own clock)
    str(cfg.hydra.sweep.dir)
    return cfg


def values_of(key: str, value: str) -> list[str]:
    """Values to try of one swept key: a grid's every value, an Optuna range's two ends."""
    (override,) = OverridesParser.create().parse_overrides([f"{key}={value}"])
    if not override.is_sweep_override():
        return [override.get_value_element_as_str()]
    sweep = override.value()
    if isinstance(sweep, IntervalSweep):
        return [str(sweep.start), str(sweep.end)]
    return list(override.sweep_string_iterator())


def study_jobs(params: DictConfig, arguments: list[str], n_jobs: int = 6) -> list[list[str]]:
    """Jobs as a sweeper makes them (its params first, then the command line's overrides); job i takes
    the i-th value of every key (cycling), so group choices and values change from job to job."""
    values = {key: values_of(key, str(value)) for key, value in params.items()}
    return [[f"{key}={options[i % len(options)]}" for key, options in values.items()] + arguments
            for i in range(n_jobs)]


def hydra_composed(hydra: Hydra, master: DictConfig, overrides: list[str], num: int) -> DictConfig:
    """What Hydra's own launchers do: ``load_sweep_config``, then the job's id and number."""
    cfg = hydra.config_loader.load_sweep_config(master, overrides)
    with open_dict(cfg):
        cfg.hydra.job.id = num
        cfg.hydra.job.num = num
    return cfg


# Resolved per call in a multirun, by Hydra as here: the sweep's resolver cache, which every job's config
# gets a copy of, holds only the ${now:...} the sweep resolved (hydra.sweep.dir's), not this one's.
PER_CALL = {".hydra.run.dir"}


def described(cfg: Any, path: str = "") -> Iterator[tuple]:
    """Every node of ``cfg``: its value (unresolved), type, flags and resolved value."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        yield path, type(cfg).__name__, OmegaConf.is_struct(cfg), OmegaConf.is_readonly(cfg), \
            OmegaConf.get_type(cfg), cfg._metadata.ref_type, cfg._metadata.object_type
        if cfg._is_none() or cfg._is_missing() or cfg._is_interpolation():
            yield path, cfg._value()
            return
        for key in (cfg.keys() if isinstance(cfg, DictConfig) else range(len(cfg))):
            yield from described(cfg._get_node(key), f"{path}.{key}")
    else:
        try:
            resolved = None if path in PER_CALL else cfg._dereference_node()._value()
        except Exception as exc:  # an unresolvable value must fail alike
            resolved = type(exc).__name__
        yield path, type(cfg).__name__, cfg._value(), resolved, cfg._metadata.ref_type


def job_files(cfg: DictConfig) -> dict[str, str]:
    """The ``.hydra/`` files and output dir the fused launcher writes for the job ``cfg``."""
    ret = open_job(cfg, task_config(cfg))
    out = Path(ret.hydra_cfg.hydra.runtime.output_dir)
    files = {path.name: path.read_text() for path in sorted((out / ".hydra").iterdir())}
    for path in (out / ".hydra").iterdir():
        path.unlink()
    return {"output_dir": str(out), **files}


def assert_derived_as_hydra_composes(hydra: Hydra, master: DictConfig, jobs: list[list[str]]) -> Composer:
    composer = Composer(hydra.config_loader, master)
    for num, overrides in enumerate(jobs):
        expected = hydra_composed(hydra, master, overrides, num)
        got = composer.compose(overrides, num)
        assert OmegaConf.to_yaml(got) == OmegaConf.to_yaml(expected), overrides
        HydraConfig.instance().set_config(expected)  # resolution sees the job's own Hydra config, as in run_job
        want = list(described(expected))
        HydraConfig.instance().set_config(got)
        assert list(described(got)) == want, overrides
        assert job_files(copy.deepcopy(got)) == job_files(copy.deepcopy(expected)), overrides
    return composer


@pytest.mark.parametrize("name", STUDIES)
def test_every_study_derives_each_jobs_config_as_hydra_composes_it(hydra, tmp_path, name):
    arguments = [f"+sweep={name}", *SMALL, f"hydra.sweep.dir={tmp_path}/${{now:%H-%M-%S}}"]
    master = sweep_config(hydra, arguments)
    jobs = study_jobs(master.hydra.sweeper.params, [o for o in arguments if not o.startswith("hydra.")])
    assert_derived_as_hydra_composes(hydra, master, jobs)


def test_a_grid_with_interpolations_derives_each_jobs_config_as_hydra_composes_it(hydra, tmp_path):
    # a swept key another interpolates (optimizer.lr: ${lr}); a job key interpolating another swept key;
    # dirs from the job's overrides; a task key from the job's Hydra config
    hydra_args = [f"hydra.sweep.dir={tmp_path}/${{now:%Y-%m-%d_%H-%M-%S}}",
                  "hydra.sweep.subdir=${hydra.job.override_dirname}",
                  "hydra.job.config.override_dirname.exclude_keys=[seed]"]
    common = [*SMALL, "model.width=${batch_size}"]
    master = sweep_config(hydra, [*hydra_args, *common, "lr=0.1,0.01", "batch_size=16,32", "seed=0,1"])
    jobs = [[f"lr={lr}", f"batch_size={bs}", f"seed={seed}", *common]
            for lr in ("0.1", "0.01") for bs in ("16", "32") for seed in ("0", "1")]
    jobs += [[*job, "activation=tanh"] for job in jobs[:2]]  # a group choice: another composition
    jobs += [["lr=1e-3", "epochs=${seed}", *SMALL], ["+note=${hydra:job.num}", *jobs[0]], ["++lr=0.5", *jobs[0]]]
    composer = assert_derived_as_hydra_composes(hydra, master, jobs)
    # the grid's eight jobs and the one after came from one composition, the two with activation=tanh from
    # another; those with +key= or ++key= were composed whole (they do more than set values)
    assert len([base for base in composer.bases.values() if base is not None]) == 2


def test_a_job_whose_overrides_fail_gets_hydras_own_error(hydra, tmp_path):
    from hydra.errors import ConfigCompositionException

    master = sweep_config(hydra, [*SMALL, f"hydra.sweep.dir={tmp_path}", "seed=0,1"])
    composer = Composer(hydra.config_loader, master)
    for overrides in (["no_such_key=1"], ["model.width=wide"], ["optimizer=no_such_optimizer"]):
        with pytest.raises(ConfigCompositionException) as ours:
            composer.compose([*SMALL, *overrides], 0)
        with pytest.raises(ConfigCompositionException) as hydras:
            hydra_composed(hydra, master, [*SMALL, *overrides], 0)
        assert str(ours.value) == str(hydras.value)


def test_jobs_of_a_structure_of_their_own_keep_no_composition(hydra, tmp_path):
    # as an Optuna study's trials, each with its own hydra.job.env_set: composed whole, nothing kept for them
    master = sweep_config(hydra, [*SMALL, f"hydra.sweep.dir={tmp_path}", "seed=0,1"])
    composer = Composer(hydra.config_loader, master)
    composer.KEEP = 4
    for num in range(10):
        overrides = [*SMALL, f"++hydra.job.env_set.TRIAL={num}", f"seed={num}"]
        got = composer.compose(overrides, num)
        assert OmegaConf.to_yaml(got) == OmegaConf.to_yaml(hydra_composed(hydra, master, overrides, num))
    assert len(composer.bases) == 4 and all(base is None for base in composer.bases.values())
