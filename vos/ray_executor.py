"""``executor=ray``: a benchmark's sequences tracked on Ray actors, each loading the model once.

Sequences wait in one queue, longest first, so a long video starts early instead of
keeping one GPU busy after the others are done. A worker returns a whole sequence's label
maps to the driver, which writes them as a local run would (atomically, with the track
record): no shared file system is assumed and a worker never writes. A worker that dies
(a lost node, a killed process) loses only the sequence it was tracking: a fresh worker
replaces it and the sequence is tracked again, up to ``max_attempts`` times in all.

Needs the ``ray`` extra (``pip install -e ".[ray]"``); :mod:`vos.settings` checks it first.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator

import ray
import torch
from ray.exceptions import RayActorError, RayTaskError

from eval.datasets import BenchmarkLayout
from .frames import list_frame_files
from .settings import ExecutorSettings
from .tracker import TrackedFrame, Tracker

log = logging.getLogger(__name__)


class WorkerDiedError(RuntimeError):
    """A sequence whose workers died ``max_attempts`` times: something kills the worker on it."""


@ray.remote
class SequenceWorker:
    """One model, loaded when the actor starts; tracks whole sequences on request."""

    def __init__(self, make_tracker: Callable[[], Tracker], layout: BenchmarkLayout, options: dict, threads: int):
        # Ray gives an actor one thread; CPU sums split over another number of threads round differently,
        # so the driver's count keeps the masks byte-identical to a local run.
        torch.set_num_threads(threads)
        self.tracker = make_tracker()
        self.layout = layout
        self.options = options

    def pid(self) -> int:
        return os.getpid()

    def track(self, sequence: str) -> tuple[list[TrackedFrame], float]:
        from .benchmark import sequence_track

        started = time.perf_counter()
        frames = list(sequence_track(self.tracker, self.layout, sequence, **self.options))
        return frames, time.perf_counter() - started


def longest_first(layout: BenchmarkLayout, sequences: list[str]) -> list[str]:
    """Sequences by their number of frame files, most first (ties in dataset order)."""
    return sorted(sequences, key=lambda s: -len(list_frame_files(layout.frames_dir(s))))


def track_on_ray(make_tracker: Callable[[], Tracker], layout: BenchmarkLayout, sequences: list[str],
                 options: dict, executor: ExecutorSettings) -> Iterator[tuple[str, list[TrackedFrame], float]]:
    """``(sequence, frames, seconds)`` as workers finish them; the caller writes each one."""
    started_here = not ray.is_initialized()
    if started_here:
        start(executor.address)
    worker_options = {"num_cpus": 1, "num_gpus": executor.gpus_per_worker}

    def new_worker():
        return SequenceWorker.options(**worker_options).remote(make_tracker, layout, options, torch.get_num_threads())

    queue = deque(longest_first(layout, sequences))
    attempts: Counter[str] = Counter()
    workers = [new_worker() for _ in range(min(executor.num_workers, len(queue)))]
    pending: dict = {}

    def submit(slot: int) -> None:
        if queue:
            sequence = queue.popleft()
            attempts[sequence] += 1
            pending[workers[slot].track.remote(sequence)] = (slot, sequence)

    try:
        for slot in range(len(workers)):
            submit(slot)
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            slot, sequence = pending.pop(ref)
            try:
                frames, seconds = ray.get(ref)
            except RayTaskError as err:  # the sequence itself failed (bad input, a bug): its own error
                raise err.as_instanceof_cause() from None
            except RayActorError as err:
                if attempts[sequence] >= executor.max_attempts:
                    raise WorkerDiedError(f"sequence {sequence}: its worker died {attempts[sequence]} times "
                                          f"(executor.max_attempts); last: {err}") from None
                log.warning("sequence %s: its worker died; tracking it again on a fresh worker", sequence)
                queue.appendleft(sequence)
                workers[slot] = new_worker()
                submit(slot)
                continue
            submit(slot)
            yield sequence, frames, seconds
    finally:
        for worker in workers:
            ray.kill(worker)
        if started_here:
            ray.shutdown()


def start(address: str | None) -> None:
    """Join the cluster at ``address``; with none, start a local one whose workers import what this process does."""
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    path = os.pathsep.join(p for p in sys.path if p)
    ray.init(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
