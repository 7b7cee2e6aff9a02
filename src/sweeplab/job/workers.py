"""What a local worker process does first: take its share of the cores and of the GPUs, stop cleanly on
a signal, die with its parent. Shared by the Optuna sweeper's workers and the pool launcher's."""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from typing import Any, Callable, Optional

WORKER_VARIABLE = "SWEEPLAB_WORKER"  # a local worker's number, which picks its GPU
INTERRUPTED = 130  # a worker's exit code when a signal stopped it
STOP_SECONDS = 30  # how long a stopped worker may take to record its job before it is killed


def preload(task_function: Callable[..., Any]) -> None:
    """Before forking workers for sweeplab's task: import what its first job would (torch and the training
    code, and torch's compiler front-end, which torch.optim imports at the first optimizer step), so that
    each worker inherits them instead of importing them again. Imports only: no torch work runs in the
    forking process, so the fork stays safe (GNU OpenMP's thread pool, which a fork does not copy, comes
    with the first parallel operation). Another app's task is left as it is."""
    if getattr(task_function, "sweeplab_task", False):
        import torch._dynamo  # noqa: F401

        import sweeplab.job.task  # noqa: F401


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def share_cores(n_workers: int) -> int:
    """Give this worker ``cores / n_workers`` torch threads (at least one); returns how many.

    Call it before torch does any work in the process. A thread count the user set in
    OMP_NUM_THREADS wins; a job's own ``threads`` key still overrides it for that job.
    """
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(max(1, usable_cores() // n_workers)))
    threads = int(os.environ["OMP_NUM_THREADS"])
    if "torch" in sys.modules:  # imported before the fork: it has read the variables already
        sys.modules["torch"].set_num_threads(threads)
    return threads


def number_worker(n_workers: int, index: int) -> int:
    """Record this worker's number (``index`` of ``n_workers``) for its jobs; returns it. A worker forked
    by a worker (a pool launcher's under an Optuna worker) is numbered within its parent's share, so
    that every process of the sweep has a number of its own."""
    outer = os.environ.get(WORKER_VARIABLE)
    number = index if outer is None else int(outer) * n_workers + index
    os.environ[WORKER_VARIABLE] = str(number)
    return number


def worker_cuda_device(device_count: int) -> str:
    """The CUDA device of ``device=auto``: outside a worker, or with one GPU, ``cuda``; in local worker N
    with several GPUs, ``cuda:{N % device_count}``, so that parallel workers share the GPUs round-robin."""
    number: Optional[str] = os.environ.get(WORKER_VARIABLE)
    if number is None or device_count <= 1:
        return "cuda"
    return f"cuda:{int(number) % device_count}"


def stop_once(signum: int, frame: Any) -> None:
    """A worker's SIGINT and SIGTERM handler: stop like Ctrl-C, once.

    Ctrl-C reaches the workers and the main process forwards it as SIGTERM too, so a second signal
    often arrives before this handler has run: it goes to a handler that does nothing (ignoring it
    outright would make Python print "Signal 15 ignored due to race condition"), so it neither cuts
    the recording short nor prints anything. A worker whose recording hangs is ended by SIGALRM's
    default action after STOP_SECONDS, so that no stopped worker outlives its sweep.
    """
    for other in (signal.SIGINT, signal.SIGTERM):
        signal.signal(other, _ignore)
    signal.alarm(STOP_SECONDS)
    raise KeyboardInterrupt


def _ignore(signum: int, frame: Any) -> None:
    """A second stop signal: already stopping."""


def _stop_again(unraisable: Any) -> None:
    """``sys.unraisablehook`` of a worker. A signal that lands while Python runs a finalizer (a weakref
    callback, a ``__del__``) raises :func:`stop_once`'s KeyboardInterrupt there, where Python prints it
    as "Exception ignored" and drops it: the worker would run its next jobs as if never stopped. So the
    stop is sent once more a moment later, from a thread, to be raised where the worker runs its own
    code (should it land in a finalizer again, this hook sends it again)."""
    in_main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers run
    if not (isinstance(unraisable.exc_value, KeyboardInterrupt) and in_main_thread):
        sys.__unraisablehook__(unraisable)
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop_once)
    threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGTERM)).start()


def become_worker(n_workers: int, index: int) -> int:
    """Set up freshly forked worker ``index`` of ``n_workers``: its cores, its number (its GPU), its
    signal handlers, death with the parent. Returns its torch thread count."""
    threads = share_cores(n_workers)
    number_worker(n_workers, index)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop_once)
    sys.unraisablehook = _stop_again
    die_with_parent()
    return threads


def die_with_parent() -> None:
    """A worker gets SIGTERM when its parent dies, even by ``kill -9``, and records its job (Linux).

    A parent that died before the signal was armed sends none, and the worker would run on alone:
    so the parent is checked after arming, and a worker whose parent is already gone exits.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        sys.exit(INTERRUPTED)
