"""Who may run what: the commands open to everyone, the operators, and the members of the operator
user groups. Members are asked of Slack at most every few minutes (on the injected clock): a command
should not wait on `usergroups.users.list` each time, and a removed member loses access soon."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.adapters.slack import SlackFailure, SlackGateway
from bot.render import replies
from bot.render.replies import Reply
from bot.settings import AccessSection

log = logging.getLogger(__name__)

GROUPS_CACHE = timedelta(minutes=5)  # how long a user group's members are trusted before asking again


class Access:
    def __init__(self, policy: AccessSection, slack: SlackGateway, clock: Callable[[], datetime]) -> None:
        self.policy = policy
        self.slack = slack
        self.clock = clock
        self._groups: dict[str, tuple[datetime, frozenset[str]]] = {}

    def allowed(self, user: str, command: str) -> bool:
        if self.policy.permission(command) == "everyone" or user in self.policy.operators:
            return True
        return any(user in self._members(group) for group in self.policy.operator_groups)

    def refusal(self, command: str) -> Reply:
        """Who may run `command` instead, for the person who may not."""
        return replies.refused(command, self.policy)

    def _members(self, group: str) -> frozenset[str]:
        now = self.clock()
        cached = self._groups.get(group)
        if cached and now - cached[0] < GROUPS_CACHE:
            return cached[1]
        try:
            members = frozenset(self.slack.usergroup_members(group))
        except SlackFailure as failure:
            log.warning("access: cannot read user group %s (%s); treating it as empty", group, failure.error)
            members = cached[1] if cached else frozenset()
        self._groups[group] = (now, members)
        return members
