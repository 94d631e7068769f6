"""The two forms in which a staff client's address is stored: never whole.

The login count per client needs to tell one address from another, nothing more: it uses a keyed hash
(HMAC-SHA256 with ``STAFF_SECRET_KEY``), which nobody can turn back into the address without the key and which
a new key makes unrelated. An IPv6 client is counted by its /64 (one subscriber usually holds a whole /64, and
counting single addresses would give an attacker 2^64 fresh ones). What people read — the home page's "last
login from", the audit log — is the address's network: IPv4 /24, IPv6 /48.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Optional, Union

IPV4_SHOWN_PREFIX = 24
IPV6_SHOWN_PREFIX = 48
IPV6_COUNTED_PREFIX = 64
SHOWN_LENGTH = 64

_Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def _parse(address: str) -> Optional[_Address]:
    try:
        parsed = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped
    return parsed


def client_network(address: Optional[str]) -> Optional[str]:
    """The form of ``address`` that is stored for people to read: its network, not the address.

    Args:
        address: The client's address as the server saw it (trusted proxies already resolved).

    Returns:
        ``203.0.113.0/24`` for an IPv4 address, ``2001:db8:1::/48`` for IPv6; a value that is not an address
        (a test client's name) as it is, cut to 64 characters; None for none.
    """
    if not address:
        return None
    parsed = _parse(address)
    if parsed is None:
        return address[:SHOWN_LENGTH]
    prefix = IPV4_SHOWN_PREFIX if isinstance(parsed, ipaddress.IPv4Address) else IPV6_SHOWN_PREFIX
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False))


def client_key(address: Optional[str], *, secret: str) -> Optional[str]:
    """The keyed hash the per-client login count is kept under (64 hex characters).

    Args:
        address: The client's address (IPv6 counted by its /64; an IPv4-mapped one as IPv4).
        secret: ``STAFF_SECRET_KEY``.

    Returns:
        The hash, or None when there is no address.
    """
    if not address:
        return None
    parsed = _parse(address)
    if parsed is None:
        counted = address.strip()
    elif isinstance(parsed, ipaddress.IPv6Address):
        counted = str(ipaddress.ip_network(f"{parsed}/{IPV6_COUNTED_PREFIX}", strict=False))
    else:
        counted = str(parsed)
    message = f"wuye-staff:login-client:v1:{counted}".encode()
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
