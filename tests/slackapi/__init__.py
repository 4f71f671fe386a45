"""A loopback Slack Web API server for tests (see server.py)."""
