"""Connected mailboxes: a member's IMAP mailbox read for business contact facts, never content."""
