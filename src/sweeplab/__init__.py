"""sweeplab: Hydra-driven hyperparameter sweeps for PyTorch MLPs."""


def sweeplab_task(function):
    """Mark ``function`` as sweeplab's task (``sweeplab.job.task.main`` or a thin wrapper of it).

    The fused launcher trains a marked task's jobs itself, as stacked models; any other task function
    it runs one job at a time, as Hydra's basic launcher does.
    """
    function.sweeplab_task = True
    return function
