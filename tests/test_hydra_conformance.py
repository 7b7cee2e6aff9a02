"""Hydra's own conformance suites, as Hydra's plugins run them: the pool and fused launchers pass
``LauncherTestSuite`` and ``IntegrationTestSuite``; the grid sweeper passes ``BatchedSweeperTestSuite``
on the basic, pool and fused launchers. The suites compose Hydra's tiny test apps (no torch task)."""
import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.test_utils.launcher_common_tests import BatchedSweeperTestSuite, IntegrationTestSuite, LauncherTestSuite

from hydra_plugins.sweeplab_fused_launcher.fused_launcher import FusedLauncher
from hydra_plugins.sweeplab_grid_sweeper.grid_sweeper import GridSweeper
from hydra_plugins.sweeplab_pool_launcher.pool_launcher import PoolLauncher

LAUNCHERS = [("pool", ["hydra.launcher.n_workers=2"]), ("fused", [])]


def test_discovery() -> None:
    launchers = {plugin.__name__ for plugin in Plugins.instance().discover(Launcher)}
    assert {PoolLauncher.__name__, FusedLauncher.__name__} <= launchers
    assert GridSweeper.__name__ in [plugin.__name__ for plugin in Plugins.instance().discover(Sweeper)]


@pytest.mark.parametrize("launcher_name, overrides", LAUNCHERS)
class TestLaunchers(LauncherTestSuite):
    pass


@pytest.mark.parametrize("task_launcher_cfg, extra_flags", [
    pytest.param({"defaults": [{"override hydra/launcher": name}, {"override hydra/hydra_logging": "hydra_debug"},
                               {"override hydra/job_logging": "disabled"}]},
                 ["-m"], id=name)
    for name, _ in LAUNCHERS
])
class TestLaunchersIntegration(IntegrationTestSuite):
    pass


@pytest.mark.parametrize("launcher_name, overrides", [
    pytest.param(name, ["hydra/sweeper=grid", "hydra.sweeper.max_batch_size=2", *extra], id=name)
    for name, extra in [("basic", []), *LAUNCHERS]
])
class TestGridSweeperBatches(BatchedSweeperTestSuite):
    pass
