"""Bounces: intake (mailbox, file, webhook), parsing, proof by VERP token, matching to the proven send,
refunds and their notices, and the shared status downgrade."""
