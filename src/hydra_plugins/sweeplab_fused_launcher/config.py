"""Config of the fused launcher, registered under ``hydra/launcher`` (pick it with ``hydra/launcher=fused``)."""
# No `from __future__ import annotations` here: Hydra's plugin scan executes this module before it is in
# sys.modules, and dataclasses cannot resolve string annotations then.
from dataclasses import dataclass
from typing import Optional

from hydra.core.config_store import ConfigStore


@dataclass
class FusedLauncherConf:
    _target_: str = "hydra_plugins.sweeplab_fused_launcher.fused_launcher.FusedLauncher"
    # memory one stacked model may use (weights, gradients, optimizer state, a batch's activations);
    # a larger group is split. null: half of what the process may still allocate on the device (on
    # the CPU the least of MemAvailable, the cgroup memory limit and RLIMIT_AS, less what is in use)
    max_memory_mb: Optional[int] = None
    # most members in one stacked model (null: as many as fit the memory budget)
    max_members: Optional[int] = None


ConfigStore.instance().store(group="hydra/launcher", name="fused", node=FusedLauncherConf, provider="sweeplab")
