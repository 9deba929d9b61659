"""Worker processes for the agent's file work: copies into hotfolders, XML notification files.

A file operation is a system call, and a thread must win the interpreter lock
back after each one from the loop, the notifier and watchdog's threads; with
a dozen calls per file that costs more than the work itself once the others
are busy. In a process of its own the calls run at the speed of the disk, and
two processes copy two batches side by side, as rsync's sender and receiver do.

Only plain data and functions that never touch the database go to a worker
(``copying.copy_all``, ``fsutil.write_files``). Workers ignore SIGTERM and SIGINT
(the agent finishes the work in hand, then shuts them down) and die with the
agent when it is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import ParamSpec, TypeVar

_PR_SET_PDEATHSIG = 1

Params = ParamSpec("Params")
Result = TypeVar("Result")


class FileWorkers:
    """A few worker processes, started on demand and replaced if one dies."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the processes now, so that the first piece of work does not wait for them."""
        for _ in range(self.processes):
            self._executor().submit(os.getpid)

    def submit(
        self, work: Callable[Params, Result], *args: Params.args, **kwargs: Params.kwargs
    ) -> Future[Result]:
        """Run ``work(*args, **kwargs)`` in a worker process."""
        try:
            return self._executor().submit(work, *args, **kwargs)
        except BrokenProcessPool:
            self.shutdown()  # a worker died (killed, out of memory): start afresh
            return self._executor().submit(work, *args, **kwargs)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.processes,
                # A fresh interpreter: forking the agent would copy its threads' locks.
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_become_worker,
                initargs=(os.getpid(),),
            )
        return self._pool


def _become_worker(agent_pid: int) -> None:
    """In a new worker process: leave signals to the agent, and end when it ends."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != agent_pid:
        os._exit(1)  # the agent is gone already
