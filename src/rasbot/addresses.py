"""Who is asking: the client address and this server's public base URL.

Forwarded headers are believed only when the socket peer is a configured trusted
proxy; anyone else could write them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_trusted(address: str | None, proxies: Sequence[Network]) -> bool:
    """Whether ``address`` belongs to one of the trusted proxy networks."""
    if not address or not proxies:
        return False
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_address(
    peer: str | None, forwarded_for: str | None, proxies: Sequence[Network]
) -> str | None:
    """The client's address: the peer, or behind trusted proxies the right-most
    ``X-Forwarded-For`` entry that is not itself a trusted proxy."""
    if not is_trusted(peer, proxies) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, proxies):
            return _valid(hop) or peer
    return hops[0] if hops else peer


def _valid(hop: str) -> str | None:
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None


def base_url(
    configured: str | None,
    scheme: str,
    host: str | None,
    *,
    forwarded_proto: str | None = None,
    forwarded_host: str | None = None,
    trusted: bool = False,
) -> str:
    """Scheme and host that absolute URLs of this server start with."""
    if configured:
        return configured
    if trusted:
        scheme = _first(forwarded_proto) or scheme
        host = _first(forwarded_host) or host
    return f"{scheme}://{host or 'localhost'}"


def _first(header: str | None) -> str | None:
    return header.split(",")[0].strip() or None if header else None
