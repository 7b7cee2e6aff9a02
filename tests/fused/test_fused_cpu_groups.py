"""On a CPU, a fused group holds at most CPU_MAX_MEMBERS members unless hydra.launcher.max_members says
otherwise: a larger group runs no faster there and holds more memory (issue 21: a 5,000-job sweep)."""
import torch

from hydra_plugins.sweeplab_fused_launcher._groups import CPU_MAX_MEMBERS, MB, Budget, chunk_size


def test_a_cpu_group_is_capped_unless_max_members_is_given():
    budget = Budget(10_000 * MB, "test")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert chunk_size(MB, budget, None, cpu) == CPU_MAX_MEMBERS
    assert chunk_size(MB, budget, None, cuda) == 10_000  # a GPU's groups: the budget alone
    assert chunk_size(MB, budget, 500, cpu) == 500  # the user's max_members wins
    assert chunk_size(200 * MB, budget, None, cpu) == 50  # the budget still binds below the cap
