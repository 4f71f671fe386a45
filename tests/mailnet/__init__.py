"""A simulated mail internet on loopback for tests and benchmarks: see tests/mailnet/net.py."""

from tests.mailnet.net import DnsShape, DomainSpec, Mailbox, MailNet
from tests.mailnet.smtp_servers import HostSpec

__all__ = ["DnsShape", "DomainSpec", "HostSpec", "MailNet", "Mailbox"]
