"""Pure renderers: core objects -> console text (and Block Kit, with the Slack alerts)."""
