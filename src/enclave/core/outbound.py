"""The one HTTP client for every request Enclave makes on a member's behalf (outgoing
webhooks, flow steps): SSRF-safe by construction.

- :func:`check_url` validates a URL when it is saved, without DNS.
- :func:`post` resolves the host once, refuses unless every address is globally routable
  (or allowed by the operator, ``ENCLAVE_OUTBOUND_ALLOW``) and not refused
  (``ENCLAVE_OUTBOUND_DENY``, which wins), then connects to that checked address itself —
  never resolving again, so a rebinding DNS answer cannot redirect the request. TLS is
  verified against the original host name (SNI and certificate), redirects are never
  followed, and ``timeout`` bounds the whole exchange, DNS included.

Every failure is :class:`Refused` with a one-line reason fit for the member and the logs:
never the resolved address, never the path or query (they may carry tokens). Logs name
only the host and the outcome.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import io
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import structlog
from django.conf import settings

log = structlog.get_logger("enclave.outbound")

MAX_URL_LENGTH = 2048
MAX_REQUEST_BYTES = 1024 * 1024
USER_AGENT = "Enclave"
DEFAULT_PORTS = {"https": 443, "http": 80}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges refused besides what ``ipaddress`` calls non-global: its tables vary between
# Python releases (3.11 misses some of RFC 6890's and later registrations).
_NOT_PUBLIC = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/96", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32",
    "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
))
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# The last label of a host that WHATWG URL parsers read as a number, so "0x7f.1" or
# "2130706433" mean 127.0.0.1 to some clients: only the dotted-decimal form is accepted.
_NUMERIC_LABEL = re.compile(r"(0x[0-9a-f]*|[0-9]+)\Z")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_PORT = re.compile(r"[0-9]{1,5}\Z")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
# Printable ASCII: kept as written in a path or query; anything else is percent-encoded.
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
# Framing headers are the client's: a caller's Host or Content-Length would contradict it.
_CLIENT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection",
                             "upgrade", "te", "trailer", "keep-alive", "proxy-connection"})
_HOSTNAME_MISMATCH = frozenset({62, 64})  # X509_V_ERR_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH
_NOT_YET_OR_NO_LONGER_VALID = frozenset({9, 10})  # X509_V_ERR_CERT_NOT_YET_VALID, _HAS_EXPIRED


class Refused(Exception):
    """The request was not made (or was stopped): ``reason`` is one line, safe to show to
    the member and to log — never the resolved internal address, never the URL's query
    string."""

    reason: str

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes  # at most max_response_bytes
    truncated: bool  # the body was longer than the cap (the rest was not read)
    elapsed: float  # seconds


@dataclass(frozen=True)
class _Target:
    """A checked URL, taken apart for the connection."""

    url: str
    scheme: str
    host: str  # IDNA-encoded, lower-case, IPv6 without brackets
    port: int
    path: str  # path and query: the request target
    ip: IPAddress | None  # the host, when it is an IP literal


@dataclass(frozen=True)
class _Policy:
    """Operator exceptions to "public addresses only"; ``deny`` wins over ``allow``."""

    allow: tuple[IPNetwork, ...]
    deny: tuple[IPNetwork, ...]

    def permits(self, ip: IPAddress) -> bool:
        candidates = (ip,) if (inner := _embedded_ipv4(ip)) is None else (ip, inner)
        if any(c in net for c in candidates for net in self.deny):
            return False
        return any(c in net for c in candidates for net in self.allow) or _is_public(ip)


def check_url(url: str, *, allow_http: bool | None = None,
              allow_networks: tuple[str, ...] | None = None,
              deny_networks: tuple[str, ...] | None = None) -> str:
    """Save-time validation, no DNS: returns the normalised URL or raises Refused. https
    only (http only when allow_http, which defaults to whether the deployment is a dev/test
    environment — see config); no userinfo (user:pass@); a host that is a name or a public
    IP literal (IP literals in private/loopback/link-local/... ranges refused; also
    decimal/octal/hex integer hosts like http://2130706433/ and http://0x7f.1/ refused);
    port any 1–65535; max URL length 2048; no whitespace/control characters; fragment
    dropped.

    ``allow_networks`` / ``deny_networks`` (CIDR strings) replace ``ENCLAVE_OUTBOUND_ALLOW``
    / ``ENCLAVE_OUTBOUND_DENY`` for IP literals; ``None``: the configured ones.
    """
    return _parse(url, allow_http=allow_http,
                  policy=_policy(allow_networks, deny_networks)).url


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float = 10.0,
         max_response_bytes: int = 64 * 1024, allow_http: bool | None = None,
         allow_networks: tuple[str, ...] | None = None,
         deny_networks: tuple[str, ...] | None = None,
         context: ssl.SSLContext | None = None) -> Response:
    """POST ``body``; never follows redirects (a 3xx is just returned as the Response);
    raises Refused for a refused URL/address, and also for connection failures, TLS
    failures and timeouts (reason like "connection refused", "timed out", "TLS certificate
    not valid for the host") so callers handle one exception type.

    ``timeout`` bounds the whole exchange (resolving, connecting, TLS, sending, reading);
    at most ``max_response_bytes`` of the body are kept and one more byte read. A body over
    1 MiB is refused before anything is resolved. ``context`` replaces the default TLS
    context (tests trust their own CA with it); it must verify certificates and host names.
    """
    started = time.monotonic()
    deadline = started + timeout
    if context is not None and (context.verify_mode != ssl.CERT_REQUIRED
                                or not context.check_hostname):
        raise ValueError("the TLS context must verify certificates and host names")
    host = None
    try:
        if len(body) > MAX_REQUEST_BYTES:
            raise Refused("the request body is larger than 1 MiB")
        policy = _policy(allow_networks, deny_networks)
        target = _parse(url, allow_http=allow_http, policy=policy)
        host = target.host
        request_headers = _request_headers(headers)
        addresses = _resolve(target, deadline)
        if not all(policy.permits(_sockaddr_ip(sockaddr)) for _, sockaddr in addresses):
            raise Refused("the host name resolves to an address that is not allowed")
        response = _exchange(target, addresses, body, request_headers, deadline=deadline,
                             max_response_bytes=max_response_bytes, context=context,
                             started=started)
    except Refused as refused:
        log.info("outbound request refused", host=host, reason=refused.reason)
        raise
    log.info("outbound request", host=host, status=response.status,
             duration_ms=round(response.elapsed * 1000))
    return response


# --- URLs ------------------------------------------------------------------------------

def _parse(url: str, *, allow_http: bool | None, policy: _Policy) -> _Target:
    """The checks of :func:`check_url`; IP literals are checked against ``policy``."""
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise Refused("the URL contains whitespace or control characters")
    if allow_http is None:
        allow_http = not settings.CONFIG.is_live  # dev and test talk to local receivers
    schemes = ("https", "http") if allow_http else ("https",)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise Refused("the URL is not valid") from None
    if parts.scheme not in schemes:
        raise Refused("the URL must start with " + " or ".join(f"{s}://" for s in schemes))
    if "@" in parts.netloc:
        raise Refused("the URL must not contain a user name or password")
    host, ip, port = _host_and_port(parts.netloc, DEFAULT_PORTS[parts.scheme])
    if ip is not None and not policy.permits(ip):
        raise Refused("the address is not allowed (internal or reserved)")
    path = quote(parts.path or "/", safe=_URL_SAFE)
    query = quote(parts.query, safe=_URL_SAFE)
    target = path + (f"?{query}" if query else "")
    netloc = f"[{host}]" if ip is not None and ip.version == 6 else host
    if port != DEFAULT_PORTS[parts.scheme]:
        netloc += f":{port}"
    normalised = f"{parts.scheme}://{netloc}{target}"
    if len(normalised) > MAX_URL_LENGTH:
        raise Refused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    return _Target(url=normalised, scheme=parts.scheme, host=host, port=port, path=target,
                   ip=ip)


def _host_and_port(netloc: str, default_port: int) -> tuple[str, IPAddress | None, int]:
    """(host, its IP when a literal, port) of ``netloc``, or Refused."""
    if netloc.startswith("["):
        literal, _, rest = netloc[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise Refused("the host is not a valid name or IP address")
        port = _port(rest[1:]) if rest else default_port
        try:
            ip = ipaddress.IPv6Address(literal)
        except ValueError:
            raise Refused("the host is not a valid name or IP address") from None
        if ip.scope_id is not None:
            raise Refused("the host is not a valid name or IP address")
        return str(ip), ip, port
    name, colon, port_text = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
    port = _port(port_text) if colon else default_port
    host = _host_name(name)
    try:
        ip = ipaddress.IPv4Address(host)
    except ValueError:
        return host, None, port
    return host, ip, port


def _port(text: str) -> int:
    if not _PORT.match(text) or not 1 <= int(text) <= 65535:
        raise Refused("the port must be a number from 1 to 65535")
    return int(text)


def _host_name(name: str) -> str:
    """A host name, IDNA-encoded and lower-cased, or a dotted-decimal IPv4 address."""
    name = name.lower().removesuffix(".")
    if not name:
        raise Refused("the URL has no host")
    try:
        # After encoding: nameprep maps e.g. full-width digits to ASCII ones.
        host = name.encode("idna").decode("ascii")
    except UnicodeError:
        raise Refused("the host is not a valid name or IP address") from None
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise Refused("the host must be a name or an IP address in dotted form"
                          ) from None
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise Refused("the host is not a valid name or IP address")
    return host


# --- Addresses -------------------------------------------------------------------------

def _is_public(ip: IPAddress) -> bool:
    """True for a globally routable unicast address; an IPv6 address that embeds an IPv4
    one (mapped, NAT64, 6to4, Teredo, compatible) also needs that one to be public."""
    inner = _embedded_ipv4(ip)
    if inner is not None and (ip.ipv4_mapped is not None or ip in _NAT64):
        return _is_public(inner)  # the packets go to the IPv4 address itself
    if inner is not None and not _is_public(inner):
        return False
    return (ip.is_global and not ip.is_multicast and not ip.is_reserved
            and not ip.is_private and not ip.is_loopback and not ip.is_link_local
            and not ip.is_unspecified and not getattr(ip, "is_site_local", False)
            and not any(ip in net for net in _NOT_PUBLIC))


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if ip.version == 4:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64 or int(ip) >> 32 == 0:  # NAT64 or IPv4-compatible (::a.b.c.d)
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def _policy(allow: tuple[str, ...] | None, deny: tuple[str, ...] | None) -> _Policy:
    config = settings.CONFIG
    return _Policy(
        allow=_networks(tuple(config.outbound_allow if allow is None else allow)),
        deny=_networks(tuple(config.outbound_deny if deny is None else deny)),
    )


@functools.lru_cache(maxsize=64)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """Parsed networks; a bad CIDR is a ValueError (a caller's mistake: the configured ones
    were checked at start-up)."""
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _sockaddr_ip(sockaddr: tuple) -> IPAddress:
    return ipaddress.ip_address(sockaddr[0].partition("%")[0])


def _resolve(target: _Target, deadline: float) -> list[tuple[int, tuple]]:
    """(family, sockaddr) for each address of the host, in the resolver's order: resolved
    once, here; the connection uses these and nothing else."""
    if target.ip is not None:
        if target.ip.version == 6:
            return [(socket.AF_INET6, (target.host, target.port, 0, 0))]
        return [(socket.AF_INET, (target.host, target.port))]
    infos = _getaddrinfo(target.host, target.port, deadline)
    addresses = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    if not addresses:
        raise Refused("the host name does not resolve")
    return addresses


def _getaddrinfo(host: str, port: int, deadline: float) -> list:
    """``socket.getaddrinfo`` cut off at ``deadline``: it has no timeout of its own, so it
    runs in a daemon thread that is left to finish on its own if it is late."""
    outcome: dict = {}

    def lookup() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except Exception as exc:  # noqa: BLE001 -- handed over to the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=lookup, name="outbound-dns", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if thread.is_alive():
        raise Refused("timed out")
    error = outcome.get("error")
    if isinstance(error, OSError | UnicodeError):
        raise Refused("the host name does not resolve")
    if error is not None:
        raise error
    return outcome["infos"]


# --- The exchange ----------------------------------------------------------------------

def _request_headers(headers: dict[str, str]) -> dict[str, str]:
    out = {}
    for name, value in headers.items():
        if not _TOKEN.match(name):
            raise Refused("a header name is not valid")
        if name.lower() in _CLIENT_HEADERS:
            raise Refused(f"the {name} header is set by Enclave itself")
        if not (value.isascii() and value.isprintable()):
            raise Refused(f"the {name} header has characters that are not allowed")
        out[name] = value
    if not any(name.lower() == "user-agent" for name in out):
        out["User-Agent"] = USER_AGENT
    out["Connection"] = "close"
    return out


def _exchange(target: _Target, addresses: list[tuple[int, tuple]], body: bytes,
              headers: dict[str, str], *, deadline: float, max_response_bytes: int,
              context: ssl.SSLContext | None, started: float) -> Response:
    if target.scheme == "https":
        conn: http.client.HTTPConnection = _PinnedHTTPSConnection(
            target.host, target.port, addresses=addresses, deadline=deadline,
            context=context or _default_context())
    else:
        conn = _PinnedHTTPConnection(target.host, target.port, addresses=addresses,
                                     deadline=deadline)
    # A watchdog besides the per-read timeouts: at the deadline it shuts the socket, so no
    # read or write can outlast it whatever the receiver does.
    expired = threading.Event()

    def cut_off() -> None:
        expired.set()
        with contextlib.suppress(OSError, AttributeError):
            conn.sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), cut_off)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        response = conn.getresponse()
        content, truncated = _read_capped(response, max_response_bytes)
        if expired.is_set() or time.monotonic() > deadline:
            raise TimeoutError("timed out")
        merged: dict[str, str] = {}
        for name, value in response.getheaders():
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return Response(status=response.status, headers=merged, body=content,
                        truncated=truncated, elapsed=time.monotonic() - started)
    except (OSError, http.client.HTTPException) as exc:
        raise Refused("timed out" if expired.is_set() else _failure_reason(exc)) from None
    finally:
        watchdog.cancel()
        conn.close()


def _read_capped(response: http.client.HTTPResponse, cap: int) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of the body, and whether there was more (one byte past the
    cap is read to know; nothing further)."""
    chunks, size = [], 0
    while size <= cap:
        chunk = response.read(min(64 * 1024, cap + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    content = b"".join(chunks)
    return content[:cap], size > cap


def _failure_reason(exc: Exception) -> str:
    """One line for the member; never the exception's text (it may name the address)."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code in _HOSTNAME_MISMATCH:
            return "TLS certificate not valid for the host"
        if exc.verify_code in _NOT_YET_OR_NO_LONGER_VALID:
            return "TLS certificate expired or not yet valid"
        return "TLS certificate not trusted"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the receiver closed the connection without answering"
    if isinstance(exc, ConnectionError):
        return "the connection was reset"
    if isinstance(exc, http.client.IncompleteRead):
        return "the receiver closed the connection before the end of its response"
    if isinstance(exc, http.client.HTTPException):
        return "the receiver's response is not valid HTTP"
    return "connection failed"


@functools.cache
def _default_context() -> ssl.SSLContext:
    """The system's trust store, certificate and host name verified, TLS 1.2 or newer."""
    return ssl.create_default_context()


class _PinnedConnectionMixin:
    """Connects to the addresses checked before, never to what ``host`` resolves to now;
    ``host`` still names the server in the Host header, SNI and certificate check. Every
    read is cut off at ``deadline``, however slowly the receiver trickles."""

    def __init__(self, *args, addresses: list[tuple[int, tuple]], deadline: float,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._addresses = addresses
        self._deadline = deadline
        self._create_connection = self._connect_checked
        self.response_class = functools.partial(_DeadlineResponse, deadline=deadline)

    def connect(self) -> None:
        super().connect()
        # What is left after the handshake bounds sending the request (socket.sendall
        # counts its timeout for the whole call).
        self.sock.settimeout(max(0.001, self._deadline - time.monotonic()))

    def _connect_checked(self, _address, _timeout=None, _source=None) -> socket.socket:
        error: OSError = TimeoutError("timed out")
        for family, sockaddr in self._addresses:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(left)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            # What is left bounds the TLS handshake (CPython's _ssl counts the socket
            # timeout for the whole handshake, not per read).
            sock.settimeout(max(0.001, self._deadline - time.monotonic()))
            return sock
        raise error


class _PinnedHTTPConnection(_PinnedConnectionMixin, http.client.HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, http.client.HTTPSConnection):
    pass


class _DeadlineResponse(http.client.HTTPResponse):
    """A response whose every socket read gets only the time left before ``deadline``."""

    def __init__(self, sock: socket.socket, *args, deadline: float, **kwargs) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp.close()
        self.fp = io.BufferedReader(_DeadlineReader(sock, deadline))


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self._sock.settimeout(left)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()
