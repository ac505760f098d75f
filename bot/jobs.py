"""Scheduled jobs on APScheduler 3: work with a period of a minute or more (the retention purge)
and work on a cron schedule read in a time zone (the daily digest; DST-correct, as the scheduler
computes local times).

Each start builds a fresh `BackgroundScheduler` (APScheduler 3 cannot restart one it shut down), so
the engine can start the jobs whenever its replica gains the alerts lease and stop them when it
loses it. Every job runs once at start, then every period. Coalescing turns a backlog of missed runs
(a stalled process, a slow job) into one run; the grace of hours still runs a late job rather than
skipping it to the next period.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.adapters.store import Store
from bot.core.schedule import standard_weekdays

log = logging.getLogger(__name__)

MISFIRE_GRACE = timedelta(hours=6)
PURGE_EVERY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    work: Callable[[], object]
    #: Every `period`, or at the times `cron` gives in `timezone`.
    period: timedelta | None = None
    cron: str | None = None
    timezone: str = "UTC"

    def trigger(self) -> BaseTrigger:
        if self.period is not None:
            return IntervalTrigger(seconds=self.period.total_seconds(), timezone=UTC)
        assert self.cron is not None
        return cron_trigger(self.cron, self.timezone)


def cron_trigger(schedule: str, timezone: str) -> CronTrigger:
    """A cron expression as people write it (weekdays from Sunday), in an IANA time zone."""
    return CronTrigger.from_crontab(standard_weekdays(schedule), timezone=ZoneInfo(timezone))


def last_fires(schedule: str, timezone: str, now: datetime, count: int = 2) -> list[datetime]:
    """The last `count` times the schedule fired at or before `now`, oldest first, in UTC (fewer
    only if it never fired that often in the past year)."""
    trigger = cron_trigger(schedule, timezone)
    for lookback in (timedelta(days=2), timedelta(days=35), timedelta(days=400)):
        fires: deque[datetime] = deque(maxlen=count)
        moment = trigger.get_next_fire_time(None, now - lookback)
        while moment is not None and moment <= now:
            fires.append(moment.astimezone(UTC))
            moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
        if len(fires) == count:
            break
    return list(fires)


class Jobs:
    """The scheduled jobs of one process; `every` adds one, `start`/`stop` run or end all of them."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self._scheduler: BackgroundScheduler | None = None
        self._lock = threading.Lock()

    def every(self, period: timedelta, name: str, work: Callable[[], object]) -> Jobs:
        self.jobs.append(Job(name, work, period=period))
        return self

    def cron(self, schedule: str, timezone: str, name: str, work: Callable[[], object]) -> Jobs:
        """Run `work` at the schedule's times in `timezone` (and once at start, to catch up)."""
        self.jobs.append(Job(name, work, cron=schedule, timezone=timezone))
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
                    job.trigger(),
                    id=job.name,
                    name=job.name,
                    # The scheduler's own clock: run now (a job catches up on what it missed), then
                    # as the trigger says.
                    next_run_time=datetime.now(UTC),
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
