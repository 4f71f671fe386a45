"""The REST API's core: keys, callers, idempotency, rate limits and the service calls (no HTTP here)."""
