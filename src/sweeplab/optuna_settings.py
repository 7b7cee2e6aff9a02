"""train.py's settings for the Optuna sweeper: ``hydra/sweeper=optuna`` in this app.

The plugin's own defaults follow hydra-optuna-sweeper (``direction: minimize``, no default search
space, ``max_failure_rate: 0``); a study of this project's MLPs maximises validation accuracy,
expects some learning rates to diverge, and may start without a search space. The plugin registers
``optuna`` only where no one else has, so this node, stored before Hydra scans its plugins, is
what ``hydra/sweeper=optuna`` selects here; ``hydra/sweeper=sweeplab_optuna`` is the plugin's own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore

from hydra_plugins.sweeplab_optuna_sweeper.config import OptunaSweeperConf

# the MLP's knobs, for a study started without a search space of its own
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
class TrainOptunaSweeperConf(OptunaSweeperConf):
    direction: Any = "maximize"  # the task returns validation accuracy (objective: best_val_acc)
    # also names the sweep dir (conf/train.yaml), so a rerun of a named study resumes it; unnamed, a
    # study is named by its start time: a fresh study per run, as the official plugin gives
    study_name: Optional[str] = "${now:%Y-%m-%d_%H-%M-%S}"
    max_failure_rate: float = 0.25  # a diverging learning rate is an outcome of the search, not an error
    default_params: Optional[Dict[str, Any]] = field(default_factory=lambda: dict(DEFAULT_SEARCH_SPACE))


def register_optuna_settings() -> None:
    ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=TrainOptunaSweeperConf,
                                 provider="sweeplab")
