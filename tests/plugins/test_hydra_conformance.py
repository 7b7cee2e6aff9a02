"""Hydra's own conformance suites, as Hydra's plugins run them: the sequential, pool and fused launchers pass
``LauncherTestSuite`` and ``IntegrationTestSuite``; the grid sweeper passes ``BatchedSweeperTestSuite``
on the basic, pool and fused launchers. The suites compose Hydra's tiny test apps (no torch task)."""
import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.test_utils.launcher_common_tests import BatchedSweeperTestSuite, IntegrationTestSuite, LauncherTestSuite
from hydra.version import VersionBase, __compat_version__

from hydra_plugins.sweeplab_fused_launcher.fused_launcher import FusedLauncher
from hydra_plugins.sweeplab_grid_sweeper.grid_sweeper import GridSweeper
from hydra_plugins.sweeplab_pool_launcher.pool_launcher import PoolLauncher
from hydra_plugins.sweeplab_sequential_launcher.sequential_launcher import SequentialLauncher

LAUNCHERS = [("sequential", []), ("pool", ["hydra.launcher.n_workers=2"]), ("fused", [])]


@pytest.fixture(autouse=True)
def hydras_version_base(hydra_restore_singletons) -> None:
    """Each suite test runs under the version base Hydra's own runs of the suites have (none given: the
    1.1 compatibility defaults). A test of this project that composed with ``version_base="1.3"`` leaves
    that base set in the process; then ``hydra.job.chdir`` defaults to false, and the suites expect the
    job's log in the job's dir. hydra_restore_singletons puts the base back afterwards."""
    VersionBase.instance().setbase(__compat_version__)


def test_discovery() -> None:
    launchers = {plugin.__name__ for plugin in Plugins.instance().discover(Launcher)}
    assert {SequentialLauncher.__name__, PoolLauncher.__name__, FusedLauncher.__name__} <= launchers
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
