"""Config of the Optuna sweeper, registered under ``hydra/sweeper`` (pick it with ``hydra/sweeper=optuna``).

Samplers and pruners are their own groups (``hydra/sweeper/sampler=random``,
``hydra/sweeper/pruner=median``); each node is instantiated with Hydra's ``_target_``.
"""
# No `from __future__ import annotations` here: Hydra's plugin scan executes this module before it is in
# sys.modules, and dataclasses cannot resolve string annotations then.
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


# ---------------------------------------------------------------- samplers
@dataclass
class SamplerConfig:
    _target_: str = MISSING
    seed: Optional[int] = None  # each local worker adds its index, so workers do not draw alike


@dataclass
class TPESamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.TPESampler"
    n_startup_trials: int = 10  # random trials before TPE models the space
    multivariate: bool = False
    constant_liar: bool = False  # helps parallel workers avoid proposing the same point


@dataclass
class RandomSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.RandomSampler"


@dataclass
class GridSamplerConfig(SamplerConfig):
    """Every combination of the (discrete) search space; the sweeper fills in ``search_space``."""

    _target_: str = "optuna.samplers.GridSampler"


@dataclass
class CmaEsSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.CmaEsSampler"
    n_startup_trials: int = 1
    consider_pruned_trials: bool = False


@dataclass
class QMCSamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.QMCSampler"
    qmc_type: str = "sobol"
    scramble: bool = True


@dataclass
class NSGAIISamplerConfig(SamplerConfig):
    _target_: str = "optuna.samplers.NSGAIISampler"
    population_size: int = 50


# ---------------------------------------------------------------- pruners
@dataclass
class NopPrunerConfig:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConfig:
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5  # finished trials before pruning starts
    n_warmup_steps: int = 1  # epochs a trial always gets
    interval_steps: int = 1


@dataclass
class PercentilePrunerConfig(MedianPrunerConfig):
    _target_: str = "optuna.pruners.PercentilePruner"
    percentile: float = 25.0  # prune below this percentile of the other trials at the same epoch


@dataclass
class SuccessiveHalvingPrunerConfig:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 3
    min_early_stopping_rate: int = 0


@dataclass
class HyperbandPrunerConfig:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"  # or the number of epochs
    reduction_factor: int = 3


# ---------------------------------------------------------------- the sweeper
# sweeplab's MLP knobs, for a study started without a search space of its own
DEFAULT_SEARCH_SPACE = {
    "lr": "tag(log, interval(1e-4, 3e-1))",
    "batch_size": "choice(64, 128, 256)",
    "model.width": "choice(64, 128, 256, 512)",
    "model.depth": "int(interval(1, 3))",
    "activation": "choice(relu, gelu, tanh)",
    "optimizer": "choice(sgd_momentum, adam)",
    "model.dropout": "interval(0.0, 0.4)",
}


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.sweeplab_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    _recursive_: bool = False  # the sweeper instantiates sampler and pruner itself (per worker seed, grid)
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])

    sampler: Any = MISSING
    pruner: Any = MISSING
    # "maximize" or "minimize", or a list of them for several objectives (the task returns a tuple)
    direction: Any = "maximize"
    # names the study and, in conf/train.yaml, the sweep dir: rerunning with the same name resumes
    study_name: str = "optuna"
    # any Optuna RDB URL (postgresql+psycopg2://user:pw@host/db for many machines);
    # null: SQLite file optuna.db in the sweep dir
    storage: Optional[str] = None
    # the study's total: a rerun counts what already finished and runs only the rest
    n_trials: int = 20
    # local worker processes; each asks for its next trial as soon as its last one ends
    n_workers: int = 1
    # stop the study once more than this fraction of n_trials has failed
    max_failure_rate: float = 0.25
    # the search space: {key: "tag(log, interval(1e-4, 1e-1))" | "choice(a, b)" | "range(1, 4)" | value}
    params: Optional[Dict[str, Any]] = None
    # searched when neither params nor the command line give a search space
    # (`python train.py -m hydra/sweeper=optuna hydra.sweeper.n_trials=30`)
    default_params: Optional[Dict[str, Any]] = field(default_factory=lambda: dict(DEFAULT_SEARCH_SPACE))
    # seconds between a running trial's heartbeats, and how old a heartbeat may get before the
    # trial counts as interrupted (its worker was killed) and is marked FAIL
    heartbeat_interval: int = 10
    grace_period: int = 30


SAMPLERS = {
    "tpe": TPESamplerConfig, "random": RandomSamplerConfig, "grid": GridSamplerConfig,
    "cmaes": CmaEsSamplerConfig, "qmc": QMCSamplerConfig, "nsgaii": NSGAIISamplerConfig,
}
PRUNERS = {
    "none": NopPrunerConfig, "median": MedianPrunerConfig, "percentile": PercentilePrunerConfig,
    "successive_halving": SuccessiveHalvingPrunerConfig, "hyperband": HyperbandPrunerConfig,
}

cs = ConfigStore.instance()
cs.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="sweeplab")
for name, node in SAMPLERS.items():
    cs.store(group="hydra/sweeper/sampler", name=name, node=node, provider="sweeplab")
for name, node in PRUNERS.items():
    cs.store(group="hydra/sweeper/pruner", name=name, node=node, provider="sweeplab")
