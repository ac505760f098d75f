"""The leader's work: the alerts lease, grouping rounds, delivery rounds, scheduled jobs and the drain.

Every replica ingests; one at a time, the holder of the alerts lease, folds events into groups,
delivers the outbox to Slack and runs the scheduled jobs. A holder that stalls past the lease's TTL
loses it: its writes are fenced (refused by the store), and if it takes the lease again it reloads
the groups from the store first, since someone else may have grouped meanwhile.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.adapters.slack import SlackGateway
from bot.adapters.store import Fence, LeaseLost, Store
from bot.core.grouping import Grouper
from bot.delivery import Delivery
from bot.jobs import Jobs
from bot.loops import Loop
from bot.pipeline import GroupingWorker

log = logging.getLogger(__name__)

#: One replica at a time groups and delivers (ingest runs everywhere); a dead holder's lease lapses.
ALERTS_LEASE = "alerts"
LEASE_TTL = timedelta(seconds=15)
GROUPING_TICK = 1.0
DELIVERY_TICK = 0.2


def replica_name() -> str:
    """Who holds the lease, as an operator reads it in the database: host, process, and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Engine:
    """The alerts lease and what only its holder does. `group` and `deliver` are one round each;
    `start` runs them in threads, `stop` ends them and drains what is left."""

    def __init__(
        self,
        store: Store,
        grouper: Grouper,
        slack: SlackGateway,
        clock: Callable[[], datetime],
        jobs: Jobs,
        holder: str,
        ttl: timedelta = LEASE_TTL,
    ) -> None:
        self.store = store
        self.clock = clock
        self.jobs = jobs
        self.ttl = ttl
        self.fence = Fence(ALERTS_LEASE, holder)
        self.worker = GroupingWorker(store, grouper, fence=self.fence)
        self.delivery = Delivery(store, slack, clock, fence=self.fence)
        self.leading = False
        self.loops = [
            Loop("grouping", self.group, GROUPING_TICK),
            Loop("delivery", self.deliver, DELIVERY_TICK),
        ]
        self._stopping = threading.Event()

    def group(self) -> bool:
        """Fold and tick while holding the alerts lease; on taking it over, start from the store.
        True while stored events are left to fold: the loop goes on at once (in a storm, a pause
        between steps would let grouping fall behind ingest), renewing the lease each step."""
        now = self.clock()
        held = self.store.leases.hold(self.fence.name, self.fence.holder, now, self.ttl)
        if held is None:
            if self.leading:
                log.warning("run: another replica took over grouping and delivery")
            self._follow()
            return False
        if held == "taken" or not self.leading:
            # Taken, not renewed: the lease lapsed (this replica stalled) and someone else may have
            # grouped meanwhile, so what memory holds is stale even if this replica led before.
            self.worker.reload()
            if self.leading:
                log.warning("run: the alerts lease lapsed and was taken again; reloaded the groups")
            else:
                log.info("run: this replica groups and delivers alerts (%s)", self.fence.holder)
            self._lead()
        try:
            self.worker.step(now)
        except LeaseLost:
            self._lost_lease()
            return False
        return self.worker.behind

    def deliver(self) -> None:
        """One delivery round, only while leading."""
        if not self.leading:
            return
        try:
            self.delivery.deliver_due()
        except LeaseLost:
            self._lost_lease()

    def _lead(self) -> None:
        self.leading = True
        if not self._stopping.is_set():
            self.jobs.start()

    def _follow(self) -> None:
        self.leading = False
        self.jobs.stop()

    def _lost_lease(self) -> None:
        # This replica stalled past its lease and another took over: its uncommitted grouping is
        # discarded (the worker reloads from the store if it leads again) and it stops sending.
        if self.leading:
            log.warning(
                "run: the alerts lease lapsed mid-step (this replica stalled, or another took over); "
                "it reloads the groups before it leads again"
            )
        self._follow()

    def renew(self) -> None:
        """Raise `LeaseLost` unless this replica held the lease without a break until now."""
        # Only an unbroken hold will do: after a lapse, what the worker holds in memory is stale.
        if self.store.leases.hold(self.fence.name, self.fence.holder, self.clock(), self.ttl) != "renewed":
            raise LeaseLost(self.fence)

    def drain(self, until: float) -> None:
        """Fold what ingest stored last and try to deliver the backlog until `until` (monotonic);
        what is left stays stored or queued for the next leader. The lease is renewed before each
        step and each delivery round: the drain can outlast the TTL."""
        try:
            while True:  # at least one step, however little time is left
                self.renew()
                self.worker.step(self.clock())
                if not self.worker.behind or time.monotonic() >= until:
                    break
            if self.worker.behind:
                log.warning(
                    "run: the drain's time ran out with events left to fold; the next leader folds them"
                )
            while self.store.outbox.backlog() and time.monotonic() < until:
                self.renew()
                if not self.delivery.deliver_due():
                    threading.Event().wait(DELIVERY_TICK)
            left = self.store.outbox.backlog()
            if left:
                log.warning("run: %d Slack messages stay queued in the outbox for the next start", left)
        except LeaseLost:
            log.warning(
                "run: the alerts lease lapsed while draining; what is queued stays for the next leader"
            )
        except Exception:
            log.exception("run: draining failed; the outbox keeps what was not delivered")

    @property
    def alive(self) -> bool:
        return all(loop.alive for loop in self.loops)

    def start(self) -> None:
        for loop in self.loops:
            loop.start()

    def stop(self, deadline: float) -> None:
        """Stops the rounds and the jobs; a leader drains until `deadline` (monotonic), then lets go."""
        self._stopping.set()
        stopped = [loop.stop(deadline - time.monotonic() - 5) for loop in self.loops]
        self.jobs.stop()
        # Draining beside a round still going could post or fold the same thing twice.
        if self.leading and all(stopped):
            self.drain(deadline - 2)
            self.store.leases.release(self.fence.name, self.fence.holder)
