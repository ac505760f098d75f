"""Scheduled jobs: work with a period of a minute or more (the retention purge), on APScheduler 3.

Each start builds a fresh `BackgroundScheduler` (APScheduler 3 cannot restart one it shut down), so
the engine can start the jobs whenever its replica gains the alerts lease and stop them when it
loses it. Every job runs once at start, then every period. Coalescing turns a backlog of missed runs
(a stalled process, a slow job) into one run; the grace of hours still runs a late job rather than
skipping it to the next period.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.adapters.store import Store

log = logging.getLogger(__name__)

MISFIRE_GRACE = timedelta(hours=6)
PURGE_EVERY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    period: timedelta
    work: Callable[[], object]


class Jobs:
    """The scheduled jobs of one process; `every` adds one, `start`/`stop` run or end all of them."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self._scheduler: BackgroundScheduler | None = None
        self._lock = threading.Lock()

    def every(self, period: timedelta, name: str, work: Callable[[], object]) -> Jobs:
        self.jobs.append(Job(name, period, work))
        return self

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    def start(self) -> None:
        with self._lock:
            if self._scheduler is not None:
                return
            scheduler = BackgroundScheduler(
                timezone=UTC,
                job_defaults={
                    "coalesce": True,
                    "misfire_grace_time": int(MISFIRE_GRACE.total_seconds()),
                    "max_instances": 1,
                },
            )
            for job in self.jobs:
                scheduler.add_job(
                    job.work,
                    IntervalTrigger(seconds=job.period.total_seconds(), timezone=UTC),
                    id=job.name,
                    name=job.name,
                    next_run_time=datetime.now(UTC),  # the scheduler's own clock: run now, then every period
                )
            scheduler.start()
            self._scheduler = scheduler
        log.debug("jobs: started %s", ", ".join(job.name for job in self.jobs))

    def stop(self) -> None:
        """Stops scheduling; a job already running finishes in its own thread."""
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=False)
            log.debug("jobs: stopped")


def purge(
    store: Store, retention: timedelta, history_retention: timedelta, clock: Callable[[], datetime]
) -> None:
    """The retention job: delete what is older than `retention` (the flow history: `history_retention`)."""
    try:
        removed = store.purge(clock(), retention, history_retention)
    except Exception:  # retention is housekeeping: never let it stop anything else
        log.exception("retention purge failed; will try again later")
        return
    if any(removed.values()):
        log.info("retention: removed %s", ", ".join(f"{n} {what}" for what, n in removed.items()))


def retention_jobs(
    store: Store, retention: timedelta, history_retention: timedelta, clock: Callable[[], datetime]
) -> Jobs:
    """The jobs every deployment runs: today the hourly retention purge."""
    return Jobs().every(PURGE_EVERY, "retention", lambda: purge(store, retention, history_retention, clock))
