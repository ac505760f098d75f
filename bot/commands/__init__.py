"""The bodies of `netlog-bot` commands, one module per command."""
