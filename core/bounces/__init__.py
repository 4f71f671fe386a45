"""Bounce intake: reading delivery status notifications and other bounce messages."""
