"""The bodies of netlog-bot's subcommands, one module each."""
