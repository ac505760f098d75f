"""`/netlog digest` in-process: the real store, the real kubernetes client against the fake API
server. A preview for anyone (the asking channel's digest, or everything), with each cluster's
NetworkLogging setting or why it cannot be read; `digest now` for operators, queued and audited;
bad words answered with a sentence."""

from __future__ import annotations

from bot.adapters.store import Store
from bot.core.outbox import DigestPost
from tests.fakes.kube import FakeKube
from tests.services.support import OPERATOR, STRANGER, Bench, audit_rows, text_of


def test_a_preview_for_anyone_says_what_each_cluster_logs(bench: Bench, kube: FakeKube) -> None:
    reply = bench.netlog.handle(STRANGER, "digest since=6h", "C0PAY")
    assert reply.response_type == "ephemeral"
    shown = text_of(reply)
    assert "Quiet: no denied attempts in these 6 hours." in shown  # at 12:00: 07:00 to 13:00
    assert "The denies routing sends to <#C0PAY>" in shown  # C0PAY gets digests
    everything = text_of(bench.netlog.handle(STRANGER, "digest", "C0WEB"))  # C0WEB does not
    assert "Every deny, whatever channel routing sends it to" in everything
    assert "`prod-eu`: deny logging is off" in shown
    assert "including the current hour so far" in shown
    kube.fail_next(403, 1)
    assert "NetworkLogging could not be read: The bot may not `get` `networkloggings`" in text_of(
        bench.netlog.handle(STRANGER, "digest", "C0PAY")
    )


def test_digest_now_is_for_operators_and_audited(bench: Bench, store: Store) -> None:
    refused = text_of(bench.netlog.handle(STRANGER, "digest now", "C0PAY"))
    assert "digest-now" in refused
    assert [item.kind for item in store.outbox.pending()] == ["audit_line"]
    posted = text_of(bench.netlog.handle(OPERATOR, "digest now", "C0PAY"))
    assert "Posting the digest of" in posted
    (post,) = [item.message for item in store.outbox.pending() if isinstance(item.message, DigestPost)]
    assert post.channel == "C0PAY"
    rows = audit_rows(store)
    assert [(r["action"], r["result"]) for r in rows] == [
        ("digest-now", "refused"),
        ("digest-now", "applied"),
    ]


def test_bad_digest_words_get_a_sentence(bench: Bench) -> None:
    for words, says in (
        ("digest since=10m", "A digest covers whole hours"),
        ("digest channel=general", "`channel=general` is not a channel"),
        ("digest weekly", "`digest` does not take `weekly`"),
        ("digest since=30d", "A digest covers at most 7d"),
    ):
        assert says in text_of(bench.netlog.handle(STRANGER, words, "C0PAY"))
    picked = text_of(bench.netlog.handle(STRANGER, "digest channel=<#C0PAY|payments>", "C0WEB"))
    assert "The denies routing sends to <#C0PAY>" in picked
