"""Slack identifiers shared by handlers and renderers: command names, action and callback IDs.

These are a public interface: messages already posted carry them, so renaming one breaks the
buttons of every alert still on screen.
"""

COMMAND = "/netlog"

OPEN_LOGS = "netlog_open_logs"
MUTE_1H = "netlog_mute_1h"
MUTE_24H = "netlog_mute_24h"

APPLY = "netlog_apply"
CANCEL = "netlog_cancel"

#: "Why denied?" on an alert's flows, and "Propose a policy" under an explanation; the value is
#: `cluster` + FLOW_SEPARATOR + the flow as the alert shows it.
EXPLAIN = "netlog_explain"
PROPOSE = "netlog_propose"
FLOW_SEPARATOR = "\x1f"
