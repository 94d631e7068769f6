"""The two forms in which a client's address is stored: never whole.

A count per client (staff logins, an owner's identity attempts, messages, web chat sessions) needs to tell one
address from another, nothing more: it uses a keyed hash (HMAC-SHA256 with the staff console's or the bot's
secret), which nobody can turn back into the address without the key and which a new key makes unrelated. An
IPv6 client is counted by its /64 (one subscriber usually holds a whole /64, and counting single addresses would
give an attacker 2^64 fresh ones). What people read — the home page's "last login from", the audit log — is the
address's network: IPv4 /24, IPv6 /48.
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
# What a client key counts (the prefix of the hashed message; the staff one is the key stored since 0016).
STAFF_LOGIN = "wuye-staff:login-client:v1"
OWNER_CLIENT = "wuye-owner:client:v1"

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


def client_key(address: Optional[str], *, secret: str, purpose: str = STAFF_LOGIN) -> Optional[str]:
    """The keyed hash a per-client count is kept under (64 hex characters).

    Args:
        address: The client's address (IPv6 counted by its /64; an IPv4-mapped one as IPv4).
        secret: ``STAFF_SECRET_KEY`` for staff logins, ``SECRET_KEY`` for owners' clients.
        purpose: What the key counts (:data:`STAFF_LOGIN`, :data:`OWNER_CLIENT`): the same address gives
            unrelated keys for different purposes.

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
    message = f"{purpose}:{counted}".encode()
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
