"""Config of the Optuna sweeper, registered under ``hydra/sweeper`` as ``sweeplab_optuna`` (and as
``optuna`` when Hydra's own hydra-optuna-sweeper has not taken that name, so its users' configs run).

The keys are those of hydra-optuna-sweeper's ``OptunaSweeperConf`` with its meaning and defaults, plus
ours (``n_workers``, ``default_params``, heartbeats); README's "Coming from hydra-optuna-sweeper" has
the few differences. Samplers and pruners are their own groups (``hydra/sweeper/sampler=random``,
``hydra/sweeper/pruner=median``): each node lists every argument of its Optuna class with Optuna's
default (tests/plugins/optuna/test_optuna_compat.py checks them against the installed Optuna), and any other class
can be given as a ``_target_`` node.
"""
# No `from __future__ import annotations` here: Hydra's plugin scan executes this module before it is in
# sys.modules, and dataclasses cannot resolve string annotations then.
import importlib.util
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

OFFICIAL_PACKAGE = "hydra_plugins.hydra_optuna_sweeper"


def official_plugin_installed() -> bool:
    """Whether Hydra's own hydra-optuna-sweeper is importable beside this plugin."""
    return importlib.util.find_spec(OFFICIAL_PACKAGE) is not None


# ---------------------------------------------------------------- samplers
# Arguments that take Python objects (callables, samplers, trials) are typed Any: a `_target_` node.
@dataclass
class TPESamplerConfig:
    _target_: str = "optuna.samplers.TPESampler"
    seed: Optional[int] = None  # trial N draws from SeedSequence([seed, N]): no process redraws another's trials
    n_startup_trials: int = 10  # random trials before TPE models the space
    n_ei_candidates: int = 24
    multivariate: Optional[bool] = None
    group: bool = False
    constant_liar: bool = True  # parallel workers avoid proposing the point another one is running
    # deprecated by Optuna 4.9; null keeps Optuna's default and its warning quiet
    consider_prior: Optional[bool] = None
    prior_weight: Optional[float] = None
    consider_magic_clip: Optional[bool] = None
    consider_endpoints: Optional[bool] = None
    warn_independent_sampling: Optional[bool] = None
    gamma: Any = None
    weights: Any = None
    constraints_func: Any = None


@dataclass
class RandomSamplerConfig:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: Optional[int] = None


@dataclass
class GridSamplerConfig:
    """Every combination of the (discrete) search space, which the sweeper passes in (``_partial_``)."""

    _target_: str = "optuna.samplers.GridSampler"
    _partial_: bool = True
    seed: Optional[int] = None


@dataclass
class CmaEsSamplerConfig:
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: Optional[int] = None
    x0: Optional[Dict[str, Any]] = None
    sigma0: Optional[float] = None
    n_startup_trials: int = 1
    independent_sampler: Any = None
    warn_independent_sampling: bool = True
    consider_pruned_trials: bool = False
    restart_strategy: Optional[str] = None
    popsize: Optional[int] = None
    inc_popsize: int = -1
    use_separable_cma: bool = False
    with_margin: bool = False
    lr_adapt: bool = False
    source_trials: Any = None


@dataclass
class QMCSamplerConfig:
    _target_: str = "optuna.samplers.QMCSampler"
    seed: Optional[int] = None
    qmc_type: str = "sobol"
    scramble: bool = False
    independent_sampler: Any = None
    warn_asynchronous_seeding: bool = True
    warn_independent_sampling: bool = True


@dataclass
class NSGAIISamplerConfig:
    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: Optional[int] = None
    population_size: int = 50
    mutation: Any = None
    mutation_prob: Optional[float] = None
    crossover: Any = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5
    constraints_func: Any = None
    elite_population_selection_strategy: Any = None
    child_generation_strategy: Any = None
    after_trial_strategy: Any = None


@dataclass
class NSGAIIISamplerConfig(NSGAIISamplerConfig):
    _target_: str = "optuna.samplers.NSGAIIISampler"
    reference_points: Any = None
    dividing_parameter: int = 3


@dataclass
class GPSamplerConfig:
    _target_: str = "optuna.samplers.GPSampler"
    seed: Optional[int] = None
    independent_sampler: Any = None
    n_startup_trials: int = 10
    deterministic_objective: bool = False
    constraints_func: Any = None
    warn_independent_sampling: bool = True


@dataclass
class BruteForceSamplerConfig:
    _target_: str = "optuna.samplers.BruteForceSampler"
    seed: Optional[int] = None
    avoid_premature_stop: bool = False


# ---------------------------------------------------------------- pruners
@dataclass
class NopPrunerConfig:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConfig:
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5  # finished trials before pruning starts
    n_warmup_steps: int = 0  # steps (epochs) before a trial can be pruned
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class PercentilePrunerConfig(MedianPrunerConfig):
    _target_: str = "optuna.pruners.PercentilePruner"
    percentile: float = 25.0  # prune below this percentile of the other trials at the same step


@dataclass
class SuccessiveHalvingPrunerConfig:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass
class HyperbandPrunerConfig:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"  # or the number of epochs
    reduction_factor: int = 3
    bootstrap_count: int = 0


@dataclass
class ThresholdPrunerConfig:
    _target_: str = "optuna.pruners.ThresholdPruner"
    lower: Optional[float] = None
    upper: Optional[float] = None
    n_warmup_steps: int = 0
    interval_steps: int = 1


@dataclass
class PatientPrunerConfig:
    _target_: str = "optuna.pruners.PatientPruner"
    wrapped_pruner: Any = None  # a pruner node, e.g. {_target_: optuna.pruners.MedianPruner}
    patience: int = 0
    min_delta: float = 0.0


@dataclass
class WilcoxonPrunerConfig:
    _target_: str = "optuna.pruners.WilcoxonPruner"
    p_threshold: float = 0.1
    n_startup_steps: int = 2


# ---------------------------------------------------------------- the sweeper
TARGET_CHECK_ENTRY = "/hydra/sweeper/callback@_global_.hydra.callbacks.sweeplab_optuna"


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.sweeplab_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    _recursive_: bool = False  # the sweeper builds sampler, pruner and storage itself, in each worker
    # _self_ first: the sampler and pruner options chosen must replace the fields below
    # and a Hydra callback that explains a config still naming hydra-optuna-sweeper's class (target_check.py)
    defaults: List[Any] = field(default_factory=lambda: [
        "_self_", {"sampler": "tpe"}, {"pruner": "nop"}, {TARGET_CHECK_ENTRY: "target_check"},
    ])

    sampler: Any = MISSING
    pruner: Any = None  # null: no pruning
    # "minimize" or "maximize", or a list of them for several objectives (the task returns a tuple)
    direction: Any = "minimize"
    # rerunning with the same name and storage resumes the study; null: named after the app (hydra.job.name)
    study_name: Optional[str] = None
    # an Optuna RDB URL (postgresql+psycopg2://user:pw@host/db for many machines), or a storage node
    # ({_target_: optuna.storages.RDBStorage, url: ...} or a JournalStorage);
    # null: SQLite file optuna.db in the sweep dir (not an in-memory study: the results survive)
    storage: Any = None
    # the study's total: a rerun counts what already finished and runs only the rest
    n_trials: int = 20
    # trials run at the same time, one local worker process each (hydra-optuna-sweeper's name for n_workers)
    n_jobs: Optional[int] = None
    # trials in flight, each asked as soon as the last one ends: local worker processes; with joblib
    # or submitit, 1 means as many as the launcher runs at once
    n_workers: int = 1
    # stop the study once more than this fraction of n_trials has failed
    max_failure_rate: float = 0.0
    # the search space: {key: "tag(log, interval(1e-4, 1e-1))" | "choice(a, b)" | "range(1, 4)" | value}
    params: Optional[Dict[str, Any]] = None
    # the older form: {key: {type: int|float|categorical, low, high, log, step, choices}}; params wins
    search_space: Optional[Dict[str, Any]] = None
    # dotted path to a function (cfg, trial) -> None that suggests more params (define-by-run);
    # ".module.function" names a module beside the app's script
    custom_search_space: Optional[str] = None
    # searched when neither params, search_space nor the command line give a search space
    default_params: Optional[Dict[str, Any]] = None
    # seconds between a running trial's heartbeats, and how old a heartbeat may get before the
    # trial counts as interrupted (its worker was killed) and is marked FAIL
    heartbeat_interval: int = 10
    grace_period: int = 30
    # trials a worker asks for at once and hands to the fused launcher: those whose sampled values
    # fuse (same shapes and ops) train as one stacked model (see hydra/launcher=fused); 1: one at a time
    fuse: int = 1


SAMPLERS = {
    "tpe": TPESamplerConfig,
    "motpe": TPESamplerConfig,  # Optuna 4 removed MOTPESampler: TPESampler handles several objectives
    "random": RandomSamplerConfig, "grid": GridSamplerConfig, "cmaes": CmaEsSamplerConfig,
    "qmc": QMCSamplerConfig, "nsgaii": NSGAIISamplerConfig, "nsgaiii": NSGAIIISamplerConfig,
    "gp": GPSamplerConfig, "bruteforce": BruteForceSamplerConfig,
}
PRUNERS = {
    "nop": NopPrunerConfig,
    "none": NopPrunerConfig,  # sweeplab's first name for it
    "median": MedianPrunerConfig, "percentile": PercentilePrunerConfig,
    "successive_halving": SuccessiveHalvingPrunerConfig, "hyperband": HyperbandPrunerConfig,
    "threshold": ThresholdPrunerConfig, "patient": PatientPrunerConfig, "wilcoxon": WilcoxonPrunerConfig,
}

cs = ConfigStore.instance()
cs.store(group="hydra/sweeper", name="sweeplab_optuna", node=OptunaSweeperConf, provider="sweeplab")
# `optuna` too, unless it is taken: by hydra-optuna-sweeper (scanned first, so it stays unambiguous
# which plugin runs) or by an app that stored its own settings for this sweeper before Hydra started
if "optuna.yaml" not in cs.repo.get("hydra", {}).get("sweeper", {}):
    cs.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="sweeplab")
for name, node in SAMPLERS.items():
    cs.store(group="hydra/sweeper/sampler", name=name, node=node, provider="sweeplab")
for name, node in PRUNERS.items():
    cs.store(group="hydra/sweeper/pruner", name=name, node=node, provider="sweeplab")
cs.store(group="hydra/sweeper/callback", name="target_check", provider="sweeplab",
         node={"_target_": "hydra_plugins.sweeplab_optuna_sweeper.target_check.OfficialTargetCheck",
               "sweeper_target": "${hydra.sweeper._target_}"})
