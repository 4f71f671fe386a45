"""Why a verification came out as it did. Stored as plain strings (see DESIGN.md, Statuses)."""

from enum import StrEnum


class Reason(StrEnum):
    # Input
    SYNTAX = "syntax"  # not an email address (empty, too long, control characters, bad form)
    POSSIBLE_TYPO = "possible_typo"  # the domain looks like a misspelt common provider
    # Domain facts (annotations; they do not decide the status on their own, except disposable)
    DISPOSABLE = "disposable"
    ROLE_BASED = "role_based"
    FREE_PROVIDER = "free_provider"
    # DNS
    DOMAIN_NOT_FOUND = "domain_not_found"  # NXDOMAIN
    NULL_MX = "null_mx"  # RFC 7505: the domain declares it accepts no mail
    NO_MX = "no_mx"  # neither MX nor A/AAAA records
    DNS_TIMEOUT = "dns_timeout"
    DNS_ERROR = "dns_error"  # SERVFAIL, refused...
    # SMTP
    MAILBOX_NOT_FOUND = "mailbox_not_found"  # 5.1.1 and friends
    DISABLED = "disabled"  # 5.2.1
    FULL_INBOX = "full_inbox"  # 5.2.2
    CATCH_ALL = "catch_all"  # the domain accepts any local part
    CATCH_ALL_UNDETERMINED = "catch_all_undetermined"  # target accepted, catch-all probe unanswered
    GREYLISTED = "greylisted"  # 4.7.x or greylist wording, still temporary after retries
    TEMPORARY = "temporary"  # other 4xx, still temporary after retries
    BLOCKED = "blocked"  # 5.7.x policy / blocklist: the server refused to talk to us
    TIMEOUT = "timeout"  # SMTP connect, banner or command timed out
    UNREACHABLE = "unreachable"  # every MX refused the connection
    SMTPUTF8_UNSUPPORTED = "smtputf8_unsupported"  # non-ASCII mailbox, server lacks SMTPUTF8
    PROTOCOL_ERROR = "protocol_error"  # a reply we cannot interpret


# Order in which annotations follow the deciding reason(s) in a result: stable for tests and users.
ANNOTATION_ORDER = (Reason.POSSIBLE_TYPO, Reason.DISPOSABLE, Reason.ROLE_BASED, Reason.FREE_PROVIDER)
