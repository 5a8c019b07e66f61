"""Who may open the live view: loopback Host names on loopback binds, a token on any other bind.

A loopback bind answers only requests whose Host header names a loopback address or
``localhost`` with the bound port (a web page that rebinds its DNS name onto 127.0.0.1
sends its own name and is refused). A bind beyond loopback (``0.0.0.0``, ``::``, ``0``,
a LAN address) is how a headless device is viewed from a laptop: there every request
must carry the view's token (``?token=``, the cookie set on the first visit, or
``Authorization: Bearer``), compared in constant time. Standard library only.
"""
import hmac
import ipaddress
import re
import secrets
import socket
from typing import Any, Dict, Optional, Tuple
from urllib.parse import parse_qs

LOOPBACK_NAMES = ("localhost", "localhost.")
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{16,128}$")
COOKIE = "jist_edge_token"


def is_loopback_address(host: str) -> bool:
    """True for a loopback IP address literal or the name ``localhost``; never by prefix (``127.evil``)."""
    name = host.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def bound_is_loopback(bound_host: str) -> bool:
    """Whether the address the server actually bound (``0`` reads as 0.0.0.0) is loopback only."""
    return is_loopback_address(bound_host)


def split_host_header(value: str) -> Optional[Tuple[str, Optional[int]]]:
    """``name[:port]`` or ``[v6][:port]`` -> (name, port or None); None when it is not that shape."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1:]
        if rest and not rest.startswith(":"):
            return None
        port_text = rest[1:] if rest else None
    elif value.count(":") > 1:
        return None  # an IPv6 address must come in brackets
    else:
        name, _, port_text = value.partition(":")
        port_text = port_text if ":" in value else None
    if port_text is not None and not (port_text.isdigit() and len(port_text) <= 5):
        return None
    return name, (int(port_text) if port_text is not None else None)


def host_header_allowed(value: Optional[str], port: int) -> bool:
    """For a loopback bind: no Host (a script), or a loopback name with the bound port.

    A Host without a port is accepted too: a browser omits the port only for port 80, so it
    comes from a script, never from a page rebinding its name onto this port."""
    if value is None or not value.strip():
        return True
    parts = split_host_header(value)
    if parts is None:
        return False
    name, given = parts
    return is_loopback_address(name) and (given is None or given == port)


def new_token() -> str:
    return secrets.token_urlsafe(18)


def check_token_text(token: str) -> str:
    """``--serve-token``: URL-safe and long enough not to be guessed; ValueError otherwise."""
    if not TOKEN_PATTERN.match(token or ""):
        raise ValueError("the token must be 16-128 characters of A-Z a-z 0-9 _ - (it goes into a URL)")
    return token


def _cookie_token(header: Optional[str], port: int) -> Optional[str]:
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == cookie_name(port):
            return value.strip()
    return None


def request_token(query: str, headers: Any, port: int) -> Tuple[Optional[str], bool]:
    """(the token a request carries, whether it came in the URL) from ?token=, a Bearer header or the cookie."""
    values = parse_qs(query, keep_blank_values=True).get("token")
    if values:
        return values[-1], True
    auth = headers.get("Authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), False
    return _cookie_token(headers.get("Cookie"), port), False


def token_matches(given: Optional[str], expected: str) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def cookie_header(token: str, port: int) -> Dict[str, str]:
    """The cookie that keeps a visitor in after the first visit (not readable by scripts, not sent cross-site)."""
    return {"Set-Cookie": "{}={}; Path=/; HttpOnly; SameSite=Strict".format(cookie_name(port), token)}


def cookie_name(port: int) -> str:
    """Cookies are not kept apart by port: one name per port, so two views on one device do not clash."""
    return "{}_{}".format(COOKIE, port)


def lan_address() -> Optional[str]:
    """This device's address on its default route (a UDP connect sends nothing), or None without one."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
        return str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
