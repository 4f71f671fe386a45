"""Email verification: syntax, domain facts, DNS, SMTP probe, stored results with a freshness window.

Phone verification lives in core.verify.phone (a separate module with its own owner).
"""
