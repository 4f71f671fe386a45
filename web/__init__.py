"""The one Flask app: Slack endpoints, the Sheets add-on API, the REST API and /healthz."""
