"""The client's network address, for rate limits and login lockouts.

X-Forwarded-For is a list each proxy appends to, so only its last `trusted_proxies` entries
were written by proxies we run; anything left of them came from the client and may be forged.
The client is therefore the entry `trusted_proxies` places from the right (the address the
outermost trusted proxy saw), never the left-most one.
"""

from __future__ import annotations

import ipaddress


def _valid(address: str | None) -> str | None:
    if not address:
        return None
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_address(
    remote_addr: str | None, forwarded_for: str | None, trusted_proxies: int
) -> str | None:
    """The client address; None when nothing usable was given."""
    if trusted_proxies > 0 and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",")]
        address = _valid(hops[-min(trusted_proxies, len(hops))])
        if address:
            return address
    return _valid(remote_addr)
