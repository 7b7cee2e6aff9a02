"""Config of sweeplab's basic launcher: ``hydra/launcher=sequential``, and train.py's default ``basic``
(``sweeplab.config``)."""
# No `from __future__ import annotations`: Hydra's plugin scan runs this module before it is in sys.modules.
from dataclasses import dataclass

from hydra.core.config_store import ConfigStore


@dataclass
class SequentialLauncherConf:
    _target_: str = "hydra_plugins.sweeplab_sequential_launcher.sequential_launcher.SequentialLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="sequential", node=SequentialLauncherConf,
                             provider="sweeplab")
