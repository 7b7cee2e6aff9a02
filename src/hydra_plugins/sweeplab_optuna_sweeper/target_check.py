"""A Hydra callback that turns hydra-optuna-sweeper's ``_target_`` line, in a config that uses this
sweeper's config while that plugin is not installed, into one line saying what to change.

Hydra builds the sweeper from ``hydra.sweeper._target_`` and stops at an unknown class with a
traceback. This sweeper's config adds this callback (``hydra.callbacks.sweeplab_optuna``), which
Hydra builds first, with the sweeper's ``_target_`` interpolated into it. It ends the run with
``SystemExit``: Hydra would wrap any other exception from a constructor in three lines of its own.
"""
from __future__ import annotations

from hydra.experimental.callback import Callback

from .config import OFFICIAL_PACKAGE, official_plugin_installed

OFFICIAL_CLASS = f"{OFFICIAL_PACKAGE}.optuna_sweeper.OptunaSweeper"
OUR_CLASS = "hydra_plugins.sweeplab_optuna_sweeper.optuna_sweeper.OptunaSweeper"


class OfficialTargetCheck(Callback):
    def __init__(self, sweeper_target: str) -> None:
        if sweeper_target == OFFICIAL_CLASS and not official_plugin_installed():
            raise SystemExit(
                f"hydra.sweeper._target_={OFFICIAL_CLASS}: hydra-optuna-sweeper is not installed; to run "
                f"sweeplab's Optuna sweeper change that line to `_target_: {OUR_CLASS}` or delete it"
            )
