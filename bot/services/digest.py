"""The digest's inputs gathered from the store (and, when clusters are configured, each cluster's
NetworkLogging settings), then one `Digest` per channel (`Digests`); and the scheduled job that
queues each channel's digest of the period that just ended, exactly once (`ScheduledDigests`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.adapters.kube import Clusters, KubeError
from bot.adapters.store import Fence, LeaseLost, Store
from bot.core import commands as cmd
from bot.core.audit import AuditEntry
from bot.core.digest import (
    AVERAGE_DAYS,
    Digest,
    DigestInputs,
    ExpiringMute,
    Health,
    Period,
    build_digest,
    digest_channels,
    logging_coverage,
    silent_hours,
    typical_lag,
)
from bot.core.history import DAY, HOUR, Window
from bot.core.netlogging import LoggingSpec
from bot.core.outbox import DigestPost
from bot.core.routing import RoutingTable
from bot.render import replies
from bot.render.digest import digest_blocks, digest_summary
from bot.render.replies import Reply
from bot.services.audit import Auditor

log = logging.getLogger(__name__)

#: Mutes a digest lists as ending soon: those that end within this long after the period.
MUTES_ENDING_WITHIN = timedelta(days=1)
#: A digest queued this long after its period ended says it is late (the bot was down at the time).
LATE_AFTER = timedelta(minutes=15)


class Digests:
    def __init__(
        self,
        store: Store,
        routing: RoutingTable,
        channels: Sequence[str],
        clusters: Clusters | None = None,
    ) -> None:
        self.store = store
        self.routing = routing
        self.channels = tuple(channels)
        self.clusters = clusters

    def make(
        self, period: Period, channels: Sequence[str | None] | None = None, *, late: bool = False
    ) -> list[Digest]:
        """The digest of each of `channels` (by default every configured channel; everything when
        none is configured; None in `channels` is that one too) for `period`, from one reading of
        the store."""
        inputs = self.inputs(period)
        wanted = list(channels) if channels else digest_channels(self.channels)
        return [build_digest(inputs, self.routing, each, late=late) for each in wanted]

    def inputs(self, period: Period) -> DigestInputs:
        store = self.store
        previous = period.previous()
        hours = store.history.flow_hours(previous.first_hour, period.end_hour)
        before = store.history.flow_sums(Window(period.start - AVERAGE_DAYS * DAY, period.start))
        current = [row for row in hours if row.hour >= period.first_hour]
        namespaces = sorted({row.namespace for row in current})
        seen = store.history.seen_before(period.start, namespaces)
        health = Health(
            silent_hours(period, store.events.hours_with_entries(period.first_hour, period.end_hour)),
            tuple(sorted(store.events.reject_counts(period.start, period.end).items())),
            typical_lag(store.events.arrival_delays(period.start, period.end)),
            tuple(store.history.node_caps(period.first_hour, period.end_hour)),
        )
        ending = tuple(
            ExpiringMute(mute.label, mute.expires_at, mute.created_by)
            for mute in store.mutes.active(period.end)
            if mute.expires_at <= period.end + MUTES_ENDING_WITHIN
        )
        return DigestInputs(
            period,
            hours,
            before,
            frozenset(row.identity for row in current if row.identity in seen),
            store.grouping.history_started(),
            health,
            store.outbox.alert_counts(period.start, period.end),
            ending,
            self._clusters(),
        )

    def _clusters(self) -> tuple[tuple[str, str], ...]:
        if self.clusters is None:
            return ()
        settings = []
        for name in self.clusters.names():
            try:
                spec = LoggingSpec.from_object(self.clusters.client(name).get_logging())
            except KubeError as error:  # a sentence already (403, 404, unreachable)
                settings.append((name, f"NetworkLogging could not be read: {error}"))
                continue
            settings.append((name, logging_coverage(spec)))
        return tuple(settings)


class ScheduledDigests:
    """The digest job: each configured channel's digest of the period between the schedule's last
    two times, queued in the outbox with its record (`OutboxStore.queue_digest`), so it is sent once
    per channel and period whatever restarts, replicas or a job run twice do. Run at each scheduled
    time and once at start: a period that ended while the bot was down is sent then, marked late;
    only the latest period is, so a bot down for days sends one digest, not one per day missed."""

    def __init__(
        self,
        digests: Digests,
        last_fires: Callable[[datetime], list[datetime]],
        clock: Callable[[], datetime],
        *,
        timezone: str = "UTC",
        project: str | None = None,
        fence: Fence | None = None,
    ) -> None:
        self.digests = digests
        self.last_fires = last_fires
        self.clock = clock
        self.timezone = timezone
        self.project = project
        self.fence = fence

    def run(self) -> int:
        """Queue what is due; returns how many digests were queued now."""
        try:
            return self._run()
        except LeaseLost:
            log.info("digest: this replica no longer holds the alerts lease; the new holder sends it")
            return 0
        except Exception:  # a job must never stop the scheduler; the next run tries again
            log.exception("digest: could not make or queue the digests; will try again at the next run")
            return 0

    def _run(self) -> int:
        now = self.clock()
        fires = self.last_fires(now)
        if len(fires) < 2:
            return 0
        previous, last = fires[-2:]
        period = Period.ending(last, max(last - previous, timedelta(hours=1)))
        store = self.digests.store
        pending = [c for c in self.digests.channels if not store.outbox.digest_queued(c, period.start)]
        if not pending:
            return 0
        late = now - period.end > LATE_AFTER
        queued = 0
        for channel, digest in zip(pending, self.digests.make(period, pending, late=late), strict=True):
            post = DigestPost(channel, digest, self.timezone, self.project)
            if store.outbox.queue_digest(post, self.clock(), self.fence):
                queued += 1
                log.info(
                    "digest: queued %s's digest of %s to %s%s",
                    channel,
                    f"{period.start:%Y-%m-%d %H:%M}",
                    f"{period.end:%H:%M} UTC",
                    " (late)" if late else "",
                )
        return queued


class DigestCommands:
    """`/netlog digest`: a preview for whoever asks (ephemeral), and `digest now`, which queues the
    digest in the channel like a scheduled one (operators only; audited). The digest is the one of
    the channel asked in (or named) when it gets digests, otherwise the one of everything."""

    def __init__(
        self,
        digests: Digests,
        auditor: Auditor,
        clock: Callable[[], datetime],
        *,
        timezone: str = "UTC",
        project: str | None = None,
    ) -> None:
        self.digests = digests
        self.auditor = auditor
        self.clock = clock
        self.timezone = timezone
        self.project = project

    def answer(self, user: str, command: cmd.Digest, channel: str | None) -> Reply:
        target = command.channel or channel
        if command.now and not target:
            return replies.problem("Say which channel to post it in: `/netlog digest now channel=C…`.")
        now = self.clock()
        # Asked for now: the current hour is read too, so far (a scheduled digest reads whole hours).
        period = Period.ending(now + HOUR, command.since)
        scope = target if target in self.digests.channels else None
        (digest,) = self.digests.make(period, [scope])
        digest = replace(
            digest, notes=(*digest.notes, f"Read at {now:%H:%M} UTC, including the current hour so far.")
        )
        if not command.now:
            zone = ZoneInfo(self.timezone)
            return Reply(digest_summary(digest), digest_blocks(digest, self.project, zone))
        assert target is not None
        post = DigestPost(
            target, digest, self.timezone, self.project, requested=f"{user}-{now:%Y%m%dT%H%M%S}"
        )
        self.digests.store.outbox.enqueue(post, now)
        self.auditor.record(
            AuditEntry(now, user, "digest-now", "applied", f"digest of {_span(period)} posted in <#{target}>")
        )
        return replies.note(f"Posting the digest of {_span(period)} in <#{target}> now.")


def _span(period: Period) -> str:
    return f"{period.start:%Y-%m-%d %H:%M}–{period.end:%H:%M} UTC"
