"""netlog-bot: GKE Dataplane V2 network policy deny logs, grouped into Slack alerts."""
