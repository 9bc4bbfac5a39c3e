"""Probes: what the running deployment answers, observed from the outside.

The server controls (:mod:`enclave.server.controls`) judge what these functions observe;
the functions themselves only connect, shake hands or send one request and report. Every
way of not getting an answer (connection refused, timeout, a client that cannot even offer
what it was asked to) raises :class:`ProbeError`, so a control can never mistake "could not
look" for "looked and it was fine".

Only the standard library is used: ``ssl`` driven through memory BIOs, so a handshake
attempt knows whether any bytes left the client, and ``http.client``, which never follows
redirects.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import warnings
from dataclasses import dataclass
from urllib.parse import urlsplit

from enclave.core.controls import Probe

TIMEOUT = 5.0
# Lets this client offer what OpenSSL 3 refuses by default (TLS 1.0/1.1, SHA-1 suites,
# static RSA), so that "refused" is the server's decision, not ours.
LEGACY_CIPHERS = "ALL:@SECLEVEL=0"
_RECV_BYTES = 65_536
_MAX_BODY_BYTES = 65_536


class ProbeError(Exception):
    """The probe could not observe the server; ``str()`` says where and why."""


@dataclass(frozen=True)
class Handshake:
    """The outcome of one TLS handshake attempt.

    ``established`` is True when the server completed the handshake and its certificate
    verified. ``refusal`` (when not established) says how the server declined: an alert or
    closing the connection after our ClientHello.
    """

    established: bool
    protocol: str | None = None
    cipher: str | None = None
    compression: str | None = None
    refusal: str | None = None

    def describe(self) -> str:
        if self.established:
            return f"{self.protocol} {self.cipher}"
        return f"refused ({self.refusal})"


@dataclass(frozen=True)
class Response:
    """One HTTP response, redirects not followed. Header names are lower-case."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def https_address(probe: Probe) -> tuple[str, int]:
    """Host and port of the probe's HTTPS URL (443 when the URL has no port)."""
    parts = urlsplit(probe.https_url)
    return parts.hostname or probe.host, parts.port or 443


def client_context(probe: Probe, *, version: ssl.TLSVersion | None = None,
                   ciphers: str | None = None, group: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the probe's CA file if given, else the system store.

    ``version`` pins minimum and maximum; ``ciphers`` replaces the TLS 1.2 suite list;
    ``group`` offers only that key-exchange group. Raises ProbeError when this client cannot
    be configured that way (then nothing about the server is known).
    """
    ctx = ssl.create_default_context(cafile=probe.ca_file)
    try:
        if version is not None:
            # Setting TLS 1.0/1.1 is deprecated in Python; offering them is the point here.
            # catch_warnings is process-global, but probes run one at a time.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = version
                ctx.maximum_version = version
        if ciphers is not None:
            ctx.set_ciphers(ciphers)
        if group is not None:
            ctx.set_ecdh_curve(group)  # OpenSSL 3: the only group this client offers.
    except (ssl.SSLError, ValueError) as exc:
        raise ProbeError(f"could not probe: this client cannot be set up to offer "
                         f"{_wanted(version, ciphers, group)}: {exc}") from exc
    return ctx


def handshake(probe: Probe, *, version: ssl.TLSVersion | None = None,
              ciphers: str | None = None, group: str | None = None,
              timeout: float = TIMEOUT) -> Handshake:
    """Attempt one TLS handshake with the probe's HTTPS listener (SNI = ``probe.host``).

    Returns :class:`Handshake`: established, or refused by the server. Raises ProbeError
    when the server cannot be reached, does not answer in time, presents a certificate that
    does not verify (the offer was accepted but the peer is not who we expect), or when the
    client fails before sending anything — e.g. OpenSSL refusing to offer TLS 1.0.
    """
    ctx = client_context(probe, version=version, ciphers=ciphers, group=group)
    wanted = _wanted(version, ciphers, group)
    with _connect(probe, timeout) as sock:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_hostname=probe.host)
        sent = 0
        while True:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                sent += _flush(sock, outgoing)
                _receive(sock, incoming, probe, wanted)
                continue
            except ssl.SSLCertVerificationError as exc:
                raise ProbeError(f"{probe.https_url} accepted {wanted} but its certificate "
                                 f"did not verify: {exc.verify_message}") from exc
            except ssl.SSLError as exc:
                # Counted before flushing: OpenSSL may queue an alert for its own failure.
                if sent == 0:
                    raise ProbeError(f"could not probe {probe.https_url} with {wanted}: "
                                     f"this client refused to offer it ({exc.reason or exc})"
                                     ) from exc
                _flush(sock, outgoing, quiet=True)
                return Handshake(False, refusal=_reason(exc))
            _flush(sock, outgoing, quiet=True)
            cipher = tls.cipher()
            return Handshake(True, protocol=tls.version(), cipher=cipher[0] if cipher else None,
                             compression=tls.compression())


def request(probe: Probe, url: str, *, accept: str = "text/html",
            timeout: float = TIMEOUT) -> Response:
    """One GET to ``url`` (http or https) with ``Host: probe.host``; redirects not followed.

    HTTPS connects to the URL's address with SNI = ``probe.host`` and verifies the
    certificate like :func:`handshake`. No credential is ever sent: on plain HTTP it would
    be recorded as exposed. Raises ProbeError when no response arrives.
    """
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = _HttpsConnection(
            parts.hostname or probe.host, parts.port or 443, server_name=probe.host,
            context=client_context(probe), timeout=timeout)
    else:
        conn = http.client.HTTPConnection(parts.hostname or probe.host, parts.port or 80,
                                          timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": probe.host, "Accept": accept,
                                           "User-Agent": "enclave-controls"})
        resp = conn.getresponse()
        body = resp.read(_MAX_BODY_BYTES)
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return Response(url, resp.status, headers, body)
    except ssl.SSLCertVerificationError as exc:
        raise ProbeError(f"{url}: certificate did not verify: {exc.verify_message}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ProbeError(f"no response from {url} ({type(exc).__name__}: {exc}); "
                         "is `make run` running?") from exc
    finally:
        conn.close()


class _HttpsConnection(http.client.HTTPSConnection):
    """HTTPS to one address while presenting (and verifying) another name via SNI."""

    def __init__(self, host: str, port: int, *, server_name: str, context: ssl.SSLContext,
                 timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._server_name = server_name
        self._tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        try:
            self.sock = self._tls_context.wrap_socket(raw, server_hostname=self._server_name)
        except BaseException:
            raw.close()
            raise


def _connect(probe: Probe, timeout: float) -> socket.socket:
    host, port = https_address(probe)
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise ProbeError(f"cannot connect to {probe.https_url} ({exc}); "
                         "is `make run` running?") from exc


def _flush(sock: socket.socket, outgoing: ssl.MemoryBIO, *, quiet: bool = False) -> int:
    """Send what the TLS engine produced; return the byte count. ``quiet``: best effort."""
    data = outgoing.read()
    if not data:
        return 0
    try:
        sock.sendall(data)
    except OSError:
        if not quiet:
            raise
    return len(data)


def _receive(sock: socket.socket, incoming: ssl.MemoryBIO, probe: Probe, wanted: str) -> None:
    try:
        data = sock.recv(_RECV_BYTES)
    except TimeoutError as exc:
        raise ProbeError(f"{probe.https_url} did not answer a handshake offering {wanted} "
                         "in time") from exc
    except ConnectionError:
        data = b""  # A reset after our ClientHello is the server declining.
    if data:
        incoming.write(data)
    else:
        incoming.write_eof()


def _reason(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLEOFError) or exc.reason is None:
        return "connection closed"
    return f"alert {exc.reason}"


def _wanted(version: ssl.TLSVersion | None, ciphers: str | None, group: str | None) -> str:
    parts = [version_name(version) if version is not None else "default protocols"]
    if ciphers is not None:
        parts.append(f"ciphers {ciphers}")
    if group is not None:
        parts.append(f"group {group}")
    return ", ".join(parts)


def version_name(version: ssl.TLSVersion) -> str:
    """``TLSVersion.TLSv1_2`` -> ``TLSv1.2`` (the spelling OpenSSL and nginx use)."""
    return version.name.replace("_", ".")
