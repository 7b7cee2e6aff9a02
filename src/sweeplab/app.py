"""train.py's registration with Hydra, in one place: the config schema's nodes, this app's settings for
the Optuna sweeper, and the grid sweeper and sequential launcher as Hydra's ``basic`` ones; and two costs of
composing removed (OmegaConf keeps its interpolations' parse trees, :mod:`sweeplab.interpolations`; a
composition no longer copies the ConfigStore, :mod:`sweeplab.sweep.shared_config_store`). train.py calls
:func:`register_configs` before Hydra composes; nothing else in ``sweeplab`` imports a plugin.

``hydra/sweeper=optuna`` here: the plugin's own defaults follow hydra-optuna-sweeper (``direction:
minimize``, no default search space, ``max_failure_rate: 0``); a study of this project's MLPs maximises
validation accuracy, expects some learning rates to diverge, and may start without a search space. The
plugin registers ``optuna`` only where no one else has, so this node, stored before Hydra scans its
plugins, is what ``hydra/sweeper=optuna`` selects here; ``hydra/sweeper=sweeplab_optuna`` is the
plugin's own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from omegaconf import OmegaConf

from hydra_plugins.sweeplab_grid_sweeper.config import GridSweeperConf
from hydra_plugins.sweeplab_optuna_sweeper.config import OptunaSweeperConf
from hydra_plugins.sweeplab_sequential_launcher.config import SequentialLauncherConf
from sweeplab.config import (
    IDX_DATASETS,
    OPTIMIZER_SCHEMAS,
    ActivationConfig,
    IdxDataConfig,
    MLPConfig,
    SyntheticDataConfig,
    TrainConfig,
)
from sweeplab.interpolations import keep_parse_trees
from sweeplab.sweep.shared_config_store import share_config_store

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


def register_configs() -> None:
    """Store the schema, this app's Optuna settings and the grid sweeper in Hydra's ConfigStore."""
    keep_parse_trees()
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    # Root-level names, not groups: `--help` lists the groups a user picks, and these are not picked.
    for name in IDX_DATASETS:
        cs.store(name=f"schema_data_{name}", node=IdxDataConfig(name=name))
    cs.store(name="schema_data_synthetic", node=SyntheticDataConfig)
    cs.store(name="schema_model_mlp", node=MLPConfig)
    cs.store(name="schema_activation", node=ActivationConfig)
    for node in OPTIMIZER_SCHEMAS:
        cs.store(name=f"schema_optimizer_{node.name}", node=node)
    cs.store(group="hydra/sweeper", name="optuna", node=TrainOptunaSweeperConf, provider="sweeplab")
    register_basic_plugins()


def register_basic_plugins() -> None:
    """In this app ``hydra/sweeper=basic``, Hydra's default, is the grid sweeper that resumes a sweep dir,
    and ``hydra/launcher=basic`` the sequential launcher (Hydra's, composing once per group of jobs).

    Not an ``override hydra/sweeper: grid`` in conf/train.yaml: Hydra keeps the first override of a
    group, so that line would win over a sweep file's ``override /hydra/sweeper: optuna``. Hydra's plugin
    scan re-registers its own ``basic`` nodes, so the scan runs first (``Plugins.instance()``, once per
    process) and these nodes replace them afterwards. The nodes are stored as plain values: job results
    carry them to other processes (pool workers), and the scan re-creates the dataclasses.
    """
    Plugins.instance()
    for group, conf in (("hydra/sweeper", GridSweeperConf), ("hydra/launcher", SequentialLauncherConf)):
        node = OmegaConf.to_container(OmegaConf.structured(conf))
        ConfigStore.instance().store(group=group, name="basic", node=node, provider="sweeplab")
    share_config_store()  # after the scan: it defines Hydra's config source classes anew
