"""Work that answers later, off Slack's listener threads: a rollout report waits up to half a minute
for the nodes, and a listener that waits with it is one fewer for the next command.

A few daemon threads take tasks from a queue. The composition root starts them and stops them on
shutdown; a task still waiting then is abandoned (the person already has the change's own answer,
and `/netlog status` shows the setting), so a stop never waits out a watch.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Task = Callable[[], None]


class BackgroundTasks:
    def __init__(self, workers: int = 4) -> None:
        self._workers = workers
        self._tasks: queue.SimpleQueue[Task | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for number in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"netlog-background-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, task: Task) -> None:
        self._tasks.put(task)

    def stop(self, timeout: float) -> bool:
        """Asks every worker to end after its current task; False if one is still busy at `timeout`."""
        for _ in self._threads:
            self._tasks.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        busy = [thread.name for thread in self._threads if thread.is_alive()]
        if busy:
            log.warning("background: %d task(s) still running at stop are abandoned", len(busy))
        self._threads = []
        return not busy

    def _work(self) -> None:
        while (task := self._tasks.get()) is not None:
            try:
                task()
            except Exception:  # one failed task must not end the worker that runs the next
                log.exception("background: a task failed")
