"""Explanations and proposals, for Slack (escaped, within Block Kit's limits) and for the terminal.

A proposal is shown as the manifest `kubectl apply -f -` takes, so that what a person reads is
exactly what Apply would create.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from bot.core import netpol
from bot.render import ids
from bot.render.blocks import SECTION_LIMIT, clip, escape
from bot.render.replies import Card, Reply

Block = dict[str, Any]


def manifests_yaml(proposal: netpol.Proposal) -> str:
    return "---\n".join(
        yaml.safe_dump(policy.manifest(), sort_keys=False, default_flow_style=False)
        for policy in proposal.policies
    )


KUBECTL = "kubectl apply -f -"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}]}


def _md(text: str) -> str:
    """A sentence of the evaluator's (policy names in backticks) with its names escaped for Slack."""
    return escape(text)


def button_value(cluster: str, flow: str) -> str:
    return f"{cluster}{ids.FLOW_SEPARATOR}{flow}"


def explanation_lines(explanation: netpol.Explanation) -> list[str]:
    lines = [*explanation.sentences]
    lines += [f"  – {reason}" for reason in explanation.reasons]
    if explanation.other_side:
        lines.append(explanation.other_side)
    return lines


def explanation_reply(explanation: netpol.Explanation) -> Reply:
    """Why the flow was denied, with a Propose button when there is something to propose."""
    flow, cluster = explanation.flow, explanation.cluster
    head = f"*Why was `{escape(flow.label)}` denied?* ({escape(cluster)})"
    body = "\n".join(
        f"• {_md(line)}" if not line.startswith("  –") else _md(line)
        for line in explanation_lines(explanation)
    )
    blocks: list[Block] = [_section(f"{head}\n{body}")]
    blocks.append(_context("What this cannot see: " + "; ".join(explanation.limits) + "."))
    if isinstance(explanation.proposal, netpol.Proposal):
        blocks.append(
            {
                "type": "actions",
                "block_id": "netlog_explain",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ids.PROPOSE,
                        "value": button_value(cluster, flow.label),
                        "text": {"type": "plain_text", "text": "Propose a policy"},
                    }
                ],
            }
        )
    elif not explanation.verdict.allowed:
        blocks.append(_context(f"No proposal: {escape(explanation.proposal.reason)}."))
    text = "; ".join(explanation.sentences)
    return Reply(clip(text, 3000), blocks)


def proposal_lines(explanation: netpol.Explanation) -> tuple[str, ...]:
    proposal = explanation.proposal
    assert isinstance(proposal, netpol.Proposal)
    count = len(proposal.policies)
    what = "this NetworkPolicy" if count == 1 else f"these {count} NetworkPolicies"
    return (
        f"Allows exactly `{escape(explanation.flow.label)}` with {what}, added beside the team's own "
        "(nothing existing is edited). Checked before showing: with it, the flow is allowed, and nothing "
        "else that is denied now between the workloads of these namespaces becomes allowed.",
        f"```\n{escape(manifests_yaml(proposal))}```",
        f"To apply it yourself: `{KUBECTL}` with {escape(explanation.cluster)}'s context, and the YAML above "
        "on its input.",
    )


def proposal_card(explanation: netpol.Explanation) -> Card:
    """The Apply/Cancel card an operator gets: the same confirmation as `/netlog enable`."""
    proposal = explanation.proposal
    assert isinstance(proposal, netpol.Proposal)
    names = ", ".join(f"{p.namespace}/{p.name}" for p in proposal.policies)
    return Card(
        f"Create {escape(names)} on {escape(explanation.cluster)}?",
        proposal_lines(explanation),
        tuple(escape(note) for note in proposal.notes),
    )


def proposal_reply(explanation: netpol.Explanation, why_no_apply: str | None) -> Reply:
    """The proposal for someone who cannot (or may not) Apply it: the YAML and the kubectl line."""
    proposal = explanation.proposal
    if not isinstance(proposal, netpol.Proposal):
        sentences = "; ".join(explanation.sentences)
        text = f"No proposal for `{escape(explanation.flow.label)}`: {escape(proposal.reason)}."
        if not explanation.verdict.allowed:
            text += f"\n{_md(sentences)}"
        return Reply(clip(text, 3000), [_section(text)])
    lines = proposal_lines(explanation)
    blocks = [_section("\n".join(lines))]
    blocks += [_section(f":warning: {escape(note)}") for note in proposal.notes]
    if why_no_apply:
        blocks.append(_context(escape(why_no_apply)))
    return Reply(f"Proposed policy for {explanation.flow.label}", blocks)


def proposals_reply(cluster: str, policies: Sequence[Any]) -> Reply:
    if not policies:
        text = f"netlog-bot has created no NetworkPolicy on {escape(cluster)}."
        return Reply(text, [_section(text)])
    lines = [
        f"• `{escape(p.namespace)}/{escape(p.name)}`: {escape(p.flow)}, "
        f"approved by <@{escape(p.approved_by)}>, {escape(p.created)}"
        for p in policies
    ]
    text = (
        f"*NetworkPolicies netlog-bot created on {escape(cluster)}* "
        "(`/netlog withdraw NAMESPACE/NAME` deletes one)\n"
    )
    return Reply(f"{len(policies)} policies", [_section(text + "\n".join(lines))])


def withdraw_card(cluster: str, namespace: str, name: str) -> Card:
    return Card(
        f"Delete NetworkPolicy {escape(namespace)}/{escape(name)} on {escape(cluster)}?",
        (
            "netlog-bot created it from a proposal. Deleting it denies again what it allowed, if nothing "
            "else allows it.",
        ),
    )


def explanation_text(explanation: netpol.Explanation) -> str:
    """The terminal's answer to `netlog-bot explain`: the same words, the YAML as is."""
    out = [f"Why was {explanation.flow.label} denied? ({explanation.cluster})"]
    out += [f"  {line}" if line.startswith("  –") else f"• {line}" for line in explanation_lines(explanation)]
    out.append("What this cannot see: " + "; ".join(explanation.limits) + ".")
    proposal = explanation.proposal
    if isinstance(proposal, netpol.Proposal):
        out.append("")
        out.append("Proposed policy (checked: it allows this flow and nothing else denied now):")
        out.append(manifests_yaml(proposal).rstrip())
        out += [f"Note: {note}" for note in proposal.notes]
        out.append(f"Apply it yourself: {KUBECTL} in {explanation.cluster}'s context, with the YAML above")
    elif not explanation.verdict.allowed:
        out.append(f"No proposal: {proposal.reason}.")
    return "\n".join(out) + "\n"
