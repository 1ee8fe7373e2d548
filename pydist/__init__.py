"""pydist: a Python clone of PowerDNS dnsdist 1.7.3."""

__version__ = "0.1.0"
