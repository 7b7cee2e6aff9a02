"""Config of the grid sweeper: ``hydra/sweeper=grid``, and train.py's default ``basic`` (sweeplab.config)."""
# No `from __future__ import annotations`: Hydra's plugin scan runs this module before it is in sys.modules.
from dataclasses import dataclass
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class GridSweeperConf:
    _target_: str = "hydra_plugins.sweeplab_grid_sweeper.grid_sweeper.GridSweeper"
    # as Hydra's basic sweeper: jobs per launch (null: all at once), and a sweep kept in a file
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None
    # skip the jobs of the sweep dir that already finished (ok, diverged, pruned) and rerun the rest
    # into their old dirs; false: run every job again, numbered from 0, as Hydra's basic sweeper does
    resume: bool = True
    # a sweep dir holds one grid: a rerun with another grid is refused unless this adds its jobs to the
    # sweep (sweep.yaml then lists every grid run into the dir)
    extend: bool = False


ConfigStore.instance().store(group="hydra/sweeper", name="grid", node=GridSweeperConf, provider="sweeplab")
