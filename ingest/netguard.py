"""Where a crawler may go: address guard, link scope, secret redaction, ${ENV} header values.

Pure functions (plus one DNS lookup in `resolve_allowed`) shared by the HTTP client, the
config loader and the sources. A crawled page or a redirect is written by someone else:
it must not steer the crawler into the operator's own network (cloud metadata at
169.254.169.254, an admin page on 127.0.0.1, a database on 10.x) nor make it carry the
source's credentials to another host.
"""
from __future__ import annotations

import ipaddress
import os
import re
import socket
from typing import Iterable, Sequence
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = ("http", "https")
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
REDACTED = "REDACTED"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SECRET_PARAM_ANYWHERE = re.compile(r"token|secret|passw|signature|credential|apikey|appkey|private", re.I)
_SECRET_PARAM_WORD = re.compile(r"(?:^|[_.\-])(?:key|sig|sign|auth|sid|session|sessionid|ticket|pwd)$", re.I)
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class AddressRefused(ValueError):
    """A host that resolves only to addresses the crawler may not visit."""


class EnvReferenceError(ValueError):
    """A `${NAME}` in a config value whose variable is not set."""


# ------------------------------------------------------------------ networks
def parse_networks(values: object, where: str) -> tuple[IPNetwork, ...]:
    """A YAML list of CIDRs (or bare addresses) as networks; one-line error naming the entry."""
    if values is None:
        return ()
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{where} must be a list of CIDRs such as 127.0.0.0/8, got {type(values).__name__}")
    networks = []
    for index, value in enumerate(values):
        if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
            networks.append(value)
            continue
        if not isinstance(value, str):
            raise ValueError(f"{where}[{index}] must be a CIDR string, got {type(value).__name__}")
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{where}[{index}]: {value!r} is not a CIDR ({exc})") from None
    return tuple(networks)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4, Teredo client), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def refusal(address: IPAddress) -> str | None:
    """Why the crawler may not connect to `address` by default (None: a public address)."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        why = refusal(inner)
        return f"{why} (inside {address})" if why else None
    checks = (("unspecified", address.is_unspecified), ("loopback", address.is_loopback),
              ("link-local", address.is_link_local), ("multicast", address.is_multicast),
              ("reserved", address.is_reserved), ("private", address.is_private),
              ("not globally routable", not address.is_global))
    for label, hit in checks:
        if hit:
            return label
    return None


def address_allowed(address: IPAddress, allowed: Sequence[IPNetwork]) -> str | None:
    """None when the crawler may connect to `address`, else the reason it may not."""
    candidates = [address]
    inner = _embedded_ipv4(address)
    if inner is not None:
        candidates.append(inner)
    if any(c.version == net.version and c in net for c in candidates for net in allowed):
        return None
    return refusal(address)


def resolve_allowed(host: str, port: int, allowed: Sequence[IPNetwork]) -> list[IPAddress]:
    """The addresses of `host` the crawler may connect to (in resolver order); raises
    AddressRefused when there is none. Connecting to one of these (and not resolving again)
    leaves no window for a DNS answer that changes between check and connect."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise OSError(f"cannot resolve {host}: {exc}") from None
        found = []
        for info in infos:
            text = str(info[4][0]).split("%", 1)[0]
            address = ipaddress.ip_address(text)
            if address not in found:
                found.append(address)
    usable = [a for a in found if address_allowed(a, allowed) is None]
    if not usable:
        reasons = "; ".join(f"{a} is {address_allowed(a, allowed)}" for a in found[:4])
        raise AddressRefused(f"{host} refused: {reasons or 'no address'} "
                             f"(allow it with http.allow_private_networks)")
    return usable


# ------------------------------------------------------------------ URLs
def normal_host(host: str | None) -> str:
    """Lower-case, no trailing dot, IDNA-encoded (例子.中国 and xn--fsqu00a.xn--fiqs8s compare equal)."""
    text = (host or "").strip().rstrip(".").lower()
    try:
        return text.encode("idna").decode("ascii") if text and not text.isascii() else text
    except UnicodeError:
        return text


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the default port filled in: what a browser calls the origin."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, normal_host(parts.hostname), port


def same_site(url: str, base: str, allowed_hosts: Iterable[str] = ()) -> bool:
    """May a link found on a page of the source at `base` be followed?

    Yes when it is http(s) and its host is the source's own host or listed in
    `allowed_hosts` (an entry `*.example.com` also covers every subdomain of example.com).
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        return False
    host = normal_host(parts.hostname)
    if host == normal_host(urlsplit(base).hostname):
        return True
    for entry in allowed_hosts:
        wanted = normal_host(str(entry))
        if wanted.startswith("*."):
            if host == wanted[2:] or host.endswith(wanted[1:]):
                return True
        elif host == wanted:
            return True
    return False


def request_target(url: str) -> str:
    """The URL with non-ASCII and spaces percent-encoded (UTF-8), as it goes on the wire."""
    return quote(url, safe="%/:=&?~#+!$,;'@()*[]|")


def _secret_param(name: str) -> bool:
    return bool(_SECRET_PARAM_ANYWHERE.search(name) or _SECRET_PARAM_WORD.search(name))


def redact_url(url: str) -> str:
    """The URL fit for a log line: no password in it, secret-looking query values replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{hostport}" if ":" in userinfo else f"{REDACTED}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_param(name) for name, _ in pairs):
            query = urlencode([(n, REDACTED if _secret_param(n) else v) for n, v in pairs], safe="%[]")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    """Headers fit for a log line: credential values replaced."""
    return {k: (REDACTED if k.lower() in SECRET_HEADERS or _secret_param(k) else v) for k, v in headers.items()}


def without_secrets(headers: dict[str, str]) -> dict[str, str]:
    """Headers to send after a redirect to another origin: credentials dropped."""
    return {k: v for k, v in headers.items() if k.lower() not in SECRET_HEADERS}


# ------------------------------------------------------------------ config values
def expand_env(value: str, environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    """`${NAME}` replaced by the environment variable NAME; raises EnvReferenceError naming it."""
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise EnvReferenceError(f"environment variable {name} is not set")
        return env[name]

    return _ENV_REFERENCE.sub(substitute, value)


def expand_headers(headers: dict[str, str], where: str,
                   environ: dict[str, str] | os._Environ[str] | None = None) -> dict[str, str]:
    """Header values with `${NAME}` expanded and checked; errors name `where` and the header,
    never the value (it may hold a token)."""
    out = {}
    for name, value in headers.items():
        try:
            expanded = expand_env(value, environ)
        except EnvReferenceError as exc:
            raise ValueError(f"{where}: headers.{name}: {exc}") from None
        if any(c in expanded for c in "\r\n\0") or any(c in name for c in "\r\n\0: "):
            raise ValueError(f"{where}: headers.{name}: a header name or value may not hold line breaks")
        try:
            expanded.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: headers.{name}: HTTP header values must be Latin-1 "
                             f"(percent-encode Chinese text)") from None
        out[name] = expanded
    return out
