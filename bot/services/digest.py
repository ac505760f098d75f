"""The digest's inputs gathered from the store (and, when clusters are configured, each cluster's
NetworkLogging settings), then one `Digest` per channel. Read once per period, shared by every
channel's digest."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.adapters.kube import Clusters, KubeError
from bot.adapters.store import Store
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
from bot.core.history import DAY, Window
from bot.core.netlogging import LoggingSpec
from bot.core.routing import RoutingTable

#: Mutes a digest lists as ending soon: those that end within this long after the period.
MUTES_ENDING_WITHIN = timedelta(days=1)


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

    def make(self, period: Period, channel: str | None = None, *, late: bool = False) -> list[Digest]:
        """The digest of every configured channel (or of `channel` alone; of everything when no
        channel is configured), for `period`."""
        inputs = self.inputs(period)
        wanted = [channel] if channel is not None else digest_channels(self.channels)
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
