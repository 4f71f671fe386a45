"""Sending email through a team's own SMTP relay, each send recorded with its VERP envelope sender."""
