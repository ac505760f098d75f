"""Explanations and proposals, for Slack (escaped, within Block Kit's limits) and for the terminal.

A proposal is shown as the manifest `kubectl apply -f -` takes: what Apply creates is that, plus the
annotations naming who approved it and the flow. A manifest too long for one Slack section is not
offered for Apply in Slack (a cut manifest must not be approved); the terminal shows it whole.
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


def manifest_yaml(policy: netpol.NetworkPolicy) -> str:
    return yaml.safe_dump(policy.manifest(), sort_keys=False, default_flow_style=False)


def manifests_yaml(proposal: netpol.Proposal) -> str:
    return "---\n".join(manifest_yaml(policy) for policy in proposal.policies)


#: Room a manifest's code block may take in one section (3,000 characters), escaping included.
_YAML_ROOM = SECTION_LIMIT - 20
#: Slack refuses a button value longer than this.
BUTTON_VALUE_LIMIT = 2000


def yaml_blocks(proposal: netpol.Proposal) -> tuple[str, ...] | None:
    """One code block per manifest, or None when one would not fit a section whole."""
    blocks = tuple(f"```\n{escape(manifest_yaml(policy))}```" for policy in proposal.policies)
    return blocks if all(len(block) <= _YAML_ROOM for block in blocks) else None


KUBECTL = "kubectl apply -f -"


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, SECTION_LIMIT)}]}


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
        f"• {escape(line)}" if not line.startswith("  –") else escape(line)
        for line in explanation_lines(explanation)
    )
    blocks: list[Block] = [_section(f"{head}\n{body}")]
    blocks.append(_context("What this cannot see: " + "; ".join(explanation.limits) + "."))
    value = button_value(cluster, explanation.asked or flow.label)
    if isinstance(explanation.proposal, netpol.Proposal) and len(value) <= BUTTON_VALUE_LIMIT:
        blocks.append(
            {
                "type": "actions",
                "block_id": "netlog_explain",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ids.PROPOSE,
                        "value": value,
                        "text": {"type": "plain_text", "text": "Propose a policy"},
                    }
                ],
            }
        )
    elif isinstance(explanation.proposal, netpol.NoProposal) and not explanation.verdict.allowed:
        blocks.append(_context(f"No proposal: {escape(explanation.proposal.reason)}."))
    text = "; ".join(explanation.sentences)
    return Reply(clip(escape(text), 3000), blocks)


def proposal_lines(explanation: netpol.Explanation) -> tuple[str, ...]:
    proposal = explanation.proposal
    assert isinstance(proposal, netpol.Proposal)
    count = len(proposal.policies)
    what = "this NetworkPolicy" if count == 1 else f"these {count} NetworkPolicies"
    return (
        f"Allows exactly `{escape(explanation.flow.label)}` with {what}, added beside the team's own "
        "(nothing existing is edited). Checked before showing: with it, the flow is allowed, no pod "
        "that is open now becomes isolated, and nothing else that is denied now between the running "
        "workloads of these namespaces becomes allowed.",
        f"To apply it yourself: `{KUBECTL}` with {escape(explanation.cluster)}'s context, and the YAML "
        "below on its input.",
    )


def proposal_card(explanation: netpol.Explanation) -> Card | None:
    """The Apply/Cancel card an operator gets (the same confirmation as `/netlog enable`); None when
    a manifest is too long to be shown whole in Slack."""
    proposal = explanation.proposal
    assert isinstance(proposal, netpol.Proposal)
    sections = yaml_blocks(proposal)
    if sections is None:
        return None
    names = ", ".join(f"{p.namespace}/{p.name}" for p in proposal.policies)
    return Card(
        f"Create {escape(names)} on {escape(explanation.cluster)}?",
        proposal_lines(explanation),
        tuple(escape(note) for note in proposal.notes),
        sections,
    )


TOO_LONG = (
    "This proposal is too long to show whole in Slack, so it cannot be applied from here: "
    "`netlog-bot explain` prints it in a terminal."
)


def proposal_reply(explanation: netpol.Explanation, why_no_apply: str | None) -> Reply:
    """The proposal for someone who cannot (or may not) Apply it: the YAML and the kubectl line."""
    proposal = explanation.proposal
    if not isinstance(proposal, netpol.Proposal):
        sentences = "; ".join(explanation.sentences)
        text = f"No proposal for `{escape(explanation.flow.label)}`: {escape(proposal.reason)}."
        if not explanation.verdict.allowed:
            text += f"\n{escape(sentences)}"
        return Reply(clip(text, 3000), [_section(text)])
    sections = yaml_blocks(proposal)
    blocks = [_section("\n".join(proposal_lines(explanation)))]
    blocks += [_section(text) for text in sections] if sections else [_section(escape(TOO_LONG))]
    blocks += [_section(f":warning: {escape(note)}") for note in proposal.notes]
    if why_no_apply and sections:
        blocks.append(_context(escape(why_no_apply)))
    return Reply(escape(f"Proposed policy for {explanation.flow.label}"), blocks)


def proposals_reply(cluster: str, policies: Sequence[Any]) -> Reply:
    if not policies:
        text = f"netlog-bot has created no NetworkPolicy on {escape(cluster)}."
        return Reply(text, [_section(text)])
    lines = [
        f"• `{escape(p.namespace)}/{escape(p.name)}`: `{escape(p.flow)}`, approved by "
        f"{_user(p.approved_by)}, {escape(p.created)}"
        for p in policies
    ]
    text = (
        f"*NetworkPolicies netlog-bot created on {escape(cluster)}* "
        "(`/netlog withdraw NAMESPACE/NAME` deletes one)\n"
    )
    return Reply(f"{len(policies)} policies", [_section(text + "\n".join(lines))])


def _user(user_id: str) -> str:
    """A mention for a Slack user ID from an annotation anyone with edit rights could have written."""
    return f"<@{user_id}>" if user_id.isalnum() else "someone unknown"


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
