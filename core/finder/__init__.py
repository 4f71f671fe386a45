"""The email finder: guess a person's address from their domain's learned patterns, then verify."""
