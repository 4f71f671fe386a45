"""Email and phone verification."""
