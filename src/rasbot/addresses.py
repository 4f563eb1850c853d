"""Who is asking: the client address and this server's public base URL.

Forwarded headers are believed only when the socket peer is a configured trusted
proxy; anyone else could write them.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# A request asks up to three of these, and the proxies' own addresses come back with
# every request behind them: parsing one costs more than the rest of an answer.
_CACHED = 4096


def is_trusted(address: str | None, proxies: tuple[Network, ...]) -> bool:
    """Whether ``address`` belongs to one of the trusted proxy networks."""
    if not address or not proxies:
        return False
    return _in_networks(address, proxies)


@lru_cache(maxsize=_CACHED)
def _in_networks(address: str, networks: tuple[Network, ...]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in network for network in networks)


@lru_cache(maxsize=_CACHED)
def _ip(address: str) -> Address | None:
    try:
        return ipaddress.ip_address(address.strip())
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: str | None, proxies: tuple[Network, ...]
) -> str | None:
    """The client's address: the peer, or behind trusted proxies the right-most
    ``X-Forwarded-For`` entry that is not itself a trusted proxy."""
    if not is_trusted(peer, proxies) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, proxies):
            ip = _ip(hop)
            return peer if ip is None else str(ip)
    return hops[0] if hops else peer


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
