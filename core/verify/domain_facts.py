"""Facts about an address that need no network: disposable domain, role account, free webmail."""

from __future__ import annotations

from dataclasses import dataclass

from disposable_email_domains import blocklist as _DISPOSABLE

# Webmail and ISP mailboxes: real people, but not a company address.
FREE_PROVIDERS: frozenset[str] = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.co.jp",
        "ymail.com", "rocketmail.com", "hotmail.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de",
        "hotmail.it", "outlook.com", "outlook.fr", "live.com", "live.co.uk", "live.fr", "msn.com",
        "icloud.com", "me.com", "mac.com", "aol.com", "protonmail.com", "proton.me", "pm.me",
        "gmx.com", "gmx.de", "gmx.net", "gmx.fr", "web.de", "t-online.de", "mail.com", "email.com",
        "yandex.ru", "yandex.com", "mail.ru", "inbox.ru", "list.ru", "bk.ru", "zoho.com", "zohomail.com",
        "tutanota.com", "tuta.io", "fastmail.com", "hey.com", "qq.com", "163.com", "126.com", "sina.com",
        "naver.com", "daum.net", "orange.fr", "wanadoo.fr", "free.fr", "sfr.fr", "laposte.net",
        "libero.it", "virgilio.it", "comcast.net", "verizon.net", "att.net", "sbcglobal.net",
        "btinternet.com", "sky.com", "rediffmail.com", "seznam.cz", "wp.pl", "o2.pl", "interia.pl",
        "bol.com.br", "uol.com.br", "terra.com.br",
    }
)

# Local parts that reach a function or a team rather than a person.
ROLE_LOCAL_PARTS: frozenset[str] = frozenset(
    {
        "abuse", "accounting", "accounts", "admin", "administrator", "billing", "careers", "contact",
        "contactus", "customerservice", "customersupport", "dev", "devnull", "enquiries", "enquiry",
        "feedback", "finance", "hello", "help", "helpdesk", "hostmaster", "hr", "info", "information",
        "inquiries", "inquiry", "it", "jobs", "legal", "mail", "mailerdaemon", "marketing", "media",
        "newsletter", "noc", "noreply", "donotreply", "office", "orders", "postmaster", "press",
        "privacy", "recruiting", "recruitment", "reply", "root", "sales", "security", "service",
        "support", "sysadmin", "team", "tech", "webmaster", "welcome",
    }
)


@dataclass(frozen=True)
class DomainFacts:
    disposable: bool
    role_based: bool
    free_provider: bool


def is_disposable(domain: str) -> bool:
    """True when the domain or any parent domain is on the disposable list (x.mailinator.com too)."""
    labels = domain.lower().rstrip(".").split(".")
    # Parents down to the registrable part; a bare TLD is never on the list.
    return any(".".join(labels[i:]) in _DISPOSABLE for i in range(len(labels) - 1))


def is_role_account(local_part: str) -> bool:
    base = local_part.lower().split("+", 1)[0]
    # "no-reply", "no_reply" and "no.reply" are the same role as "noreply".
    squashed = base.replace("-", "").replace("_", "").replace(".", "")
    return base in ROLE_LOCAL_PARTS or squashed in ROLE_LOCAL_PARTS


def is_free_provider(domain: str) -> bool:
    return domain.lower().rstrip(".") in FREE_PROVIDERS


def domain_facts(local_part: str, domain: str) -> DomainFacts:
    return DomainFacts(
        disposable=is_disposable(domain),
        role_based=is_role_account(local_part),
        free_provider=is_free_provider(domain),
    )
