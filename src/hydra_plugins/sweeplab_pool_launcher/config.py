"""Config of the pool launcher, registered under ``hydra/launcher`` (pick it with ``hydra/launcher=pool``)."""
# No `from __future__ import annotations` here: Hydra's plugin scan executes this module before it is in
# sys.modules, and dataclasses cannot resolve string annotations then.
from dataclasses import dataclass
from typing import Optional

from hydra.core.config_store import ConfigStore


@dataclass
class PoolLauncherConf:
    _target_: str = "hydra_plugins.sweeplab_pool_launcher.pool_launcher.PoolLauncher"
    # worker processes, each running one job at a time with cores / n_workers torch threads;
    # unset: one per CPU core this process may use
    n_workers: Optional[int] = None


ConfigStore.instance().store(group="hydra/launcher", name="pool", node=PoolLauncherConf, provider="sweeplab")
