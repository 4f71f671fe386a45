"""Where contact data comes from. Every source speaks the protocol in `core.sources.base`."""
