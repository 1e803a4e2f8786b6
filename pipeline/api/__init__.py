"""The operator surface: an HTTP API over what the workers keep in Redis, and a dashboard.

The API never talks to the workers directly: everything it shows (stream states, recent
history, latest scores, recent alerts, counters) is what the workers already write to
Redis in their fenced save, so any number of API replicas can run next to any number of
workers. `create_app` (pipeline.api.app) builds the app; `run_api` (pipeline.api.server)
serves it.
"""
