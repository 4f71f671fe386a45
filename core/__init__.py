"""Tributary domain logic. Imports storage; never a web framework, Slack or Sheets library."""
