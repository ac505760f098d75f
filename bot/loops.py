"""The sub-second rounds (grouping, delivery) as threads, and the main thread's wait for a signal.

Rounds that run every second or faster stay plain threads: a scheduler adds nothing to "again,
right after this one". Work with a period of a minute or more is a job (`bot.jobs`).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from bot.adapters.pubsub import Subscriber

log = logging.getLogger(__name__)

#: How often the main thread looks at the subscriber while it waits for a signal.
POLL = 0.5


class Loop:
    """Calls `work` every `interval` seconds in a thread until stopped; an error is logged, not fatal.
    When `work` returns True (a backlog is left) it is called again at once, without the wait."""

    def __init__(self, name: str, work: Callable[[], object], interval: float) -> None:
        self.name = name
        self.work = work
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"netlog-{name}", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.work() is True:
                    continue
            except Exception:
                log.exception("%s: failed; retrying in %.0f s", self.name, max(self.interval, 1.0))
                self._stop.wait(max(self.interval, 1.0))
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Stops the loop; False if its current round (a slow Slack or database call) is still going."""
        self._stop.set()
        self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def shutdown_on_signals() -> threading.Event:
    """An event SIGTERM (Kubernetes) or SIGINT (Ctrl-C) sets; install it before starting anything."""
    shutdown = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: shutdown.set())
    return shutdown


def wait_for_shutdown(shutdown: threading.Event, subscriber: Subscriber) -> None:
    """Blocks until `shutdown` is set or the subscriber stops; raises `SubscriptionError` if it failed."""
    while not shutdown.is_set() and not subscriber.stopped.is_set():
        shutdown.wait(POLL)
    if subscriber.stopped.is_set():
        subscriber.wait()  # raises SubscriptionError with what to fix
