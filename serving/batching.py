"""Server-side batching of concurrent requests, with TF Serving's parameters.

Why: a SavedModel call has a fixed cost (graph dispatch, Transform's lookup
tables) that dwarfs the per-row cost, so merging concurrent requests into one
call multiplies throughput under load. The parameters mean what they mean in
TF Serving's ``--batching_parameters_file`` (rendered from the same
``serving.batching`` config by ``serving.models_config.render_batching``):

* ``max_batch_size``: rows per merged call. A request with more rows runs alone
  (TF Serving would split it; the result is the same).
* ``batch_timeout_micros``: the longest a queued request waits for others.
* ``num_batch_threads``: calls running in parallel (per queue here).
* ``max_enqueued_batches``: queue capacity, in batches of ``max_batch_size``
  rows; beyond it a request is refused with 503 UNAVAILABLE and TF Serving's
  message, so clients back off instead of piling up latency.

One deliberate difference: a worker waits for the timeout only while other
requests are inside the gateway and could still join (``Demand``). A lone
request is run at once instead of idling ``batch_timeout_micros``, which keeps
single-client latency at the bare model cost.
"""
import collections
import dataclasses
import logging
import threading
import time
from typing import Callable, Deque, Dict, List, Optional

import numpy as np

from common.config import BatchingConfig
from serving.errors import ServingError, Unavailable

logger = logging.getLogger(__name__)

Arrays = Dict[str, np.ndarray]
RunFn = Callable[[Arrays], Arrays]
QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"


class Demand:
    """How many inference requests are inside the gateway right now.

    Batch workers use it to decide whether waiting can pay off.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def __enter__(self) -> "Demand":
        with self._lock:
            self._count += 1
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._count -= 1

    @property
    def count(self) -> int:
        return self._count


@dataclasses.dataclass
class _Task:
    inputs: Arrays
    rows: int
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    result: Optional[Arrays] = None
    error: Optional[BaseException] = None


class BatchQueue:
    """Merges concurrent calls of one signature of one model version."""

    def __init__(self, run: RunFn, params: BatchingConfig, demand: Demand, name: str = "") -> None:
        self._run = run
        self._params = params
        self._demand = demand
        self._timeout_s = params.batch_timeout_micros / 1e6
        self._capacity_rows = params.max_enqueued_batches * params.max_batch_size
        self._cond = threading.Condition()
        self._queue: Deque[_Task] = collections.deque()
        self._queued_rows = 0
        self._running_tasks = 0
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"batch-{name}-{i}", daemon=True)
                         for i in range(params.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, inputs: Arrays, rows: int) -> Arrays:
        """Runs ``inputs`` (``rows`` rows each) in some batch; returns its rows of the outputs."""
        task = _Task(inputs, rows)
        with self._cond:
            counted = False
            if self._closed:
                # A retired version still answers requests that picked it before the swap.
                inline = True
            elif not self._queue and self._demand.count - self._running_tasks <= 1:
                # Alone in the gateway: nothing to batch with, skip the thread hand-off.
                inline = counted = True
                self._running_tasks += 1
            else:
                inline = False
                if self._queued_rows + rows > self._capacity_rows and self._queue:
                    raise Unavailable(QUEUE_FULL)
                self._queue.append(task)
                self._queued_rows += rows
                self._cond.notify_all()
        if inline:
            try:
                return self._run(inputs)
            finally:
                if counted:
                    with self._cond:
                        self._running_tasks -= 1
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.result

    def close(self) -> None:
        """Stops the workers once the queue is drained; later calls run unbatched."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._run_batch(batch)
            finally:
                with self._cond:
                    self._running_tasks -= len(batch)

    def _next_batch(self) -> Optional[List[_Task]]:
        max_rows = self._params.max_batch_size
        with self._cond:
            while True:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return None
                deadline = time.monotonic() + self._timeout_s
                while self._queue and self._queued_rows < max_rows and not self._closed:
                    could_join = self._demand.count - len(self._queue) - self._running_tasks
                    remaining = deadline - time.monotonic()
                    if could_join <= 0 or remaining <= 0:
                        break
                    self._cond.wait(remaining)
                if not self._queue:  # another worker took them
                    continue
                batch = [self._queue.popleft()]
                rows = batch[0].rows
                while self._queue and rows + self._queue[0].rows <= max_rows:
                    task = self._queue.popleft()
                    batch.append(task)
                    rows += task.rows
                self._queued_rows -= rows
                self._running_tasks += len(batch)
                return batch

    def _run_batch(self, batch: List[_Task]) -> None:
        if len(batch) == 1:
            self._finish_alone(batch[0])
            return
        try:
            merged = {name: np.concatenate([task.inputs[name] for task in batch])
                      for name in batch[0].inputs}
            outputs = self._run(merged)
            total = sum(task.rows for task in batch)
            for name, array in outputs.items():
                if np.ndim(array) == 0 or np.shape(array)[0] != total:
                    raise ValueError(f"output '{name}' has no batch dimension of {total}")
        except Exception:  # pylint: disable=broad-except
            # One bad request must not fail its neighbours: run each alone.
            for task in batch:
                self._finish_alone(task)
            return
        start = 0
        for task in batch:
            task.result = {name: array[start:start + task.rows] for name, array in outputs.items()}
            start += task.rows
            task.done.set()

    def _finish_alone(self, task: _Task) -> None:
        try:
            task.result = self._run(task.inputs)
        except ServingError as err:
            task.error = err
        except Exception as err:  # pylint: disable=broad-except
            logger.exception("Batch call failed")
            task.error = ServingError(f"internal error: {err}")
        task.done.set()
