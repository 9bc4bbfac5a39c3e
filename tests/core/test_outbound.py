"""The outbound HTTP client (enclave.core.outbound): SSRF refusals, requests pinned to the
checked address, TLS verification and time limits — against real receivers on 127.0.0.1.

Only name resolution is simulated (:class:`FakeResolver`): no DNS server answers arbitrary
names here. Every connection, TLS handshake and timeout is real.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from structlog.testing import capture_logs

from enclave import config
from enclave.config import ConfigError
from enclave.core import outbound
from enclave.core.outbound import Refused

SHORT = 0.5  # seconds: the timeout of every test that waits for one
SLACK = 0.4  # how late a cut-off may come on a busy test machine
LOOPBACK = ("127.0.0.1/32",)
HOOKS = "hooks.example.test"
OTHER = "other.example.test"
NOT_ALLOWED = "the address is not allowed (internal or reserved)"
RESOLVES_NOT_ALLOWED = "the host name resolves to an address that is not allowed"

# One address from each range that is not globally routable; the IPv6 forms that embed
# an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) embed an internal one.
INTERNAL = [
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.254",
    "192.168.1.1", "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.254",
    "0.0.0.0",  # noqa: S104 -- an address to refuse, not one to bind
    "0.1.2.3", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "192.0.2.1", "198.18.0.1",
    "::1", "::", "fe80::1", "fc00::1", "fd12:3456:789a::1", "fec0::1", "ff02::1", "ff0e::1",
    "2001:db8::1", "100::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
    "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::1", "2002:a00:1::1", "2002:a9fe:a9fe::1",
    "2001:0:4136:e378:8000:63bf:f5ff:fffe",  # Teredo, client 10.0.0.1
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111",
          "64:ff9b::808:808",  # NAT64 of 8.8.8.8
          "2002:808:808::1"]  # 6to4 of 8.8.8.8


def literal(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


# --- Receivers -------------------------------------------------------------------------

@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


Reply = Callable[[BaseHTTPRequestHandler], None]


def ok(handler: BaseHTTPRequestHandler) -> None:
    send(handler, 200, b"ok", {"X-Receiver-Token": "yes"})


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes,
         headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def endless(handler: BaseHTTPRequestHandler) -> None:
    """A body without a length that goes on until the client hangs up (64 MiB at most)."""
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.end_headers()
    with contextlib.suppress(OSError):  # the client hanging up ends the loop
        for _ in range(4096):
            handler.wfile.write(b"x" * 16384)


def trickle(handler: BaseHTTPRequestHandler) -> None:
    """Headers at once, then one body byte every 0.1 s: each read is quick, the whole is
    not (100 s for all of it)."""
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.end_headers()
    with contextlib.suppress(OSError):  # the client hanging up ends the loop
        for _ in range(1000):
            handler.wfile.write(b"x")
            time.sleep(0.1)


def hang_up(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True


class Receiver:
    """An HTTP(S) server on 127.0.0.1 in a thread that records every request."""

    def __init__(self, reply: Reply = ok, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[Seen] = []
        self.server_names: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 5

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Seen(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                reply(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def start(reply: Reply = ok, tls: ssl.SSLContext | None = None) -> Receiver:
        started.append(Receiver(reply, tls))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


@pytest.fixture
def receiver(receivers) -> Receiver:
    return receivers()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose connections the kernel accepts and nobody ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- Names and certificates ------------------------------------------------------------

@dataclass
class FakeResolver:
    """Stands in for DNS: each name has a list of answers, one per lookup (the last one
    repeats); an unknown name does not resolve. ``calls`` lists every name asked."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def answer(self, name: str, *rounds: list[str]) -> None:
        self.answers[name] = [list(r) for r in rounds]

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        self.calls.append(host)
        rounds = self.answers.get(host)
        if not rounds:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = rounds.pop(0) if len(rounds) > 1 else rounds[0]
        return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port, 0, 0))
                if ":" in a else
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
                for a in addresses]


@pytest.fixture
def resolver(monkeypatch) -> FakeResolver:
    fake = FakeResolver()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


class LocalCa:
    """A certificate authority made for this test session; nothing is committed."""

    def __init__(self, directory) -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Outbound test CA")])
        self.cert = (
            self._builder(name, self.key.public_key())
            .issuer_name(name)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256()))
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def _builder(self, name: x509.Name, public_key) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        return (x509.CertificateBuilder().subject_name(name).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(hours=1))
                .not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                               critical=False))

    def server_context(self, host: str) -> ssl.SSLContext:
        """A server context with a certificate for ``host`` signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]),
                          key.public_key())
            .issuer_name(self.cert.subject)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256()))
        cert_file, key_file = self.directory / f"{host}.crt", self.directory / f"{host}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.pem)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory) -> LocalCa:
    return LocalCa(tmp_path_factory.mktemp("outbound-ca"))


def refusal(call: Callable[[], object]) -> str:
    with pytest.raises(Refused) as refused:
        call()
    return refused.value.reason


def timed_refusal(call: Callable[[], object]) -> tuple[str, float]:
    started = time.monotonic()
    reason = refusal(call)
    return reason, time.monotonic() - started


def post(url: str, **kwargs) -> outbound.Response:
    kwargs.setdefault("body", b'{"event": "test"}')
    kwargs.setdefault("headers", {"Content-Type": "application/json"})
    kwargs.setdefault("allow_http", True)
    kwargs.setdefault("timeout", SHORT)
    return outbound.post(url, **kwargs)


def with_config(settings, **changes) -> None:
    settings.CONFIG = dataclasses.replace(settings.CONFIG, **changes)


# --- Save-time checks ------------------------------------------------------------------

class TestCheckUrl:
    @pytest.mark.parametrize(("url", "expected"), [
        ("HTTPS://Hooks.Example.COM/in?b=1#section", "https://hooks.example.com/in?b=1"),
        ("https://hooks.example.com:443/in", "https://hooks.example.com/in"),
        ("https://hooks.example.com", "https://hooks.example.com/"),
        ("https://hooks.example.com.:8443/in", "https://hooks.example.com:8443/in"),
        ("https://bücher.example/é?q=ü", "https://xn--bcher-kva.example/%C3%A9?q=%C3%BC"),
        ("https://[2606:4700:4700:0::1111]/", "https://[2606:4700:4700::1111]/"),
    ])
    def test_url_is_returned_normalised_when_accepted(self, url, expected):
        assert outbound.check_url(url) == expected

    def test_name_is_accepted_without_asking_dns(self, resolver):
        assert outbound.check_url("https://no-such-host.invalid/") == \
            "https://no-such-host.invalid/"
        assert resolver.calls == []

    @pytest.mark.parametrize("port", ["1", "65535"])
    def test_port_is_accepted_at_the_ends_of_the_range(self, port):
        assert outbound.check_url(f"https://hooks.example.com:{port}/") == \
            f"https://hooks.example.com:{port}/"

    @pytest.mark.parametrize("port", ["0", "65536", "99999", "+80", "8o", ""])
    def test_port_outside_1_to_65535_is_refused(self, port):
        reason = refusal(lambda: outbound.check_url(f"https://hooks.example.com:{port}/"))
        assert reason == "the port must be a number from 1 to 65535"

    @pytest.mark.parametrize("authority", [
        "user:pass@hooks.example.com", "user@hooks.example.com", ":pass@hooks.example.com",
        "hooks.example.com@10.0.0.1", "hooks.example.com\\@evil.example"])
    def test_user_name_or_password_is_refused(self, authority):
        reason = refusal(lambda: outbound.check_url(f"https://{authority}/"))
        assert reason == "the URL must not contain a user name or password"

    def test_http_is_refused_when_not_allowed(self):
        reason = refusal(lambda: outbound.check_url("http://hooks.example.com/",
                                                    allow_http=False))
        assert reason == "the URL must start with https://"

    def test_http_is_accepted_when_allowed(self):
        assert outbound.check_url("http://hooks.example.com/", allow_http=True) == \
            "http://hooks.example.com/"

    def test_http_is_refused_by_default_in_production(self, settings):
        with_config(settings, env="production")
        reason = refusal(lambda: outbound.check_url("http://hooks.example.com/"))
        assert reason == "the URL must start with https://"

    def test_http_is_accepted_by_default_in_a_test_environment(self, settings):
        with_config(settings, env="test")
        assert outbound.check_url("http://hooks.example.com/") == "http://hooks.example.com/"

    @pytest.mark.parametrize("url", ["ftp://hooks.example.com/", "file:///etc/passwd",
                                     "gopher://hooks.example.com/", "javascript:alert(1)",
                                     "//hooks.example.com/", "hooks.example.com/in"])
    def test_other_schemes_are_refused(self, url):
        reason = refusal(lambda: outbound.check_url(url, allow_http=True))
        assert reason == "the URL must start with https:// or http://"

    @pytest.mark.parametrize("ip", INTERNAL)
    def test_internal_ip_literal_is_refused(self, ip):
        reason = refusal(lambda: outbound.check_url(f"https://{literal(ip)}/"))
        assert reason == NOT_ALLOWED

    @pytest.mark.parametrize("ip", PUBLIC)
    def test_public_ip_literal_is_accepted(self, ip):
        assert outbound.check_url(f"https://{literal(ip)}/in") == f"https://{literal(ip)}/in"

    @pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "0x7f.1", "0177.0.0.1",
                                      "127.1", "017700000001", "0x7f.0x0.0x0.0x1",
                                      "134744072", "1.2.3.4.5", "hooks.example.0x10"])
    def test_integer_octal_and_hex_hosts_are_refused(self, host):
        reason = refusal(lambda: outbound.check_url(f"http://{host}/", allow_http=True))
        assert reason == "the host must be a name or an IP address in dotted form"

    def test_full_width_digits_are_read_as_the_address_they_spell(self):
        reason = refusal(lambda: outbound.check_url("https://１２７．０．０．１/"))
        assert reason == NOT_ALLOWED

    @pytest.mark.parametrize("host", ["hooks..example.com", "-hooks.example.com",
                                      "hooks!.example.com", "hooks.exa%6dple.com",
                                      "[fe80::1%25eth0]", "a" * 64 + ".example"])
    def test_malformed_host_is_refused(self, host):
        reason = refusal(lambda: outbound.check_url(f"https://{host}/"))
        assert reason == "the host is not a valid name or IP address"

    @pytest.mark.parametrize("url", ["https://[::1/", "https://[hooks.example.com]/",
                                     "https://[1.2.3.4]/"])
    def test_unbalanced_or_misused_brackets_are_refused(self, url):
        assert refusal(lambda: outbound.check_url(url)) == "the URL is not valid"

    @pytest.mark.parametrize("url", ["https://hooks.example.com/a b", " https://hooks.example.com/",
                                     "https://hooks.example.com/\n", "https://hooks.example.com/\t",
                                     "https://hooks.example.com/\x00", "https://hooks.exa\u200bmple.com/"])
    def test_whitespace_or_control_characters_are_refused(self, url):
        reason = refusal(lambda: outbound.check_url(url))
        assert reason == "the URL contains whitespace or control characters"

    def test_url_of_2048_characters_is_accepted(self):
        url = "https://hooks.example.com/"
        url += "a" * (2048 - len(url))
        assert outbound.check_url(url) == url

    def test_url_over_2048_characters_is_refused(self):
        url = "https://hooks.example.com/"
        url += "a" * (2049 - len(url))
        assert refusal(lambda: outbound.check_url(url)) == \
            "the URL is longer than 2048 characters"

    def test_allow_list_accepts_an_internal_ip_literal(self):
        assert outbound.check_url("https://10.1.2.3/", allow_networks=("10.0.0.0/8",)) == \
            "https://10.1.2.3/"

    def test_deny_list_refuses_a_public_ip_literal(self):
        reason = refusal(lambda: outbound.check_url("https://93.184.215.14/",
                                                    deny_networks=("93.184.215.0/24",)))
        assert reason == NOT_ALLOWED

    def test_refusal_reason_omits_the_credentials_and_the_query(self):
        reason = refusal(lambda: outbound.check_url(
            "https://user:pw-s3cret@hooks.example.com/?token=q-s3cret"))
        assert reason == "the URL must not contain a user name or password"
        assert "s3cret" not in reason


# --- Requests --------------------------------------------------------------------------

class TestPost:
    def test_body_and_headers_reach_an_allowed_receiver(self, receiver):
        response = post(receiver.url("/hook?id=7"), allow_networks=LOOPBACK,
                        headers={"Content-Type": "application/json", "X-Signature": "abc"})
        assert response.status == 200
        assert response.body == b"ok"
        assert response.truncated is False
        [seen] = receiver.requests
        assert (seen.path, seen.body) == ("/hook?id=7", b'{"event": "test"}')
        assert seen.headers["x-signature"] == "abc"
        assert seen.headers["content-type"] == "application/json"

    def test_response_header_names_are_lower_cased(self, receiver):
        response = post(receiver.url(), allow_networks=LOOPBACK)
        assert response.headers["x-receiver-token"] == "yes"
        assert "X-Receiver-Token" not in response.headers

    def test_loopback_receiver_is_refused_by_default(self, receiver):
        assert refusal(lambda: post(receiver.url())) == NOT_ALLOWED
        assert receiver.requests == []

    @pytest.mark.parametrize("ip", INTERNAL)
    def test_name_resolving_to_an_internal_address_is_refused(self, resolver, ip):
        resolver.answer(HOOKS, [ip])
        assert refusal(lambda: post(f"https://{HOOKS}/hook")) == RESOLVES_NOT_ALLOWED

    def test_name_resolving_to_a_public_and_a_private_address_is_refused(self, resolver):
        resolver.answer(HOOKS, ["93.184.215.14", "10.0.0.1"])
        assert refusal(lambda: post(f"https://{HOOKS}/hook")) == RESOLVES_NOT_ALLOWED

    def test_name_that_does_not_resolve_is_refused(self, resolver):
        assert refusal(lambda: post(f"https://{HOOKS}/hook")) == \
            "the host name does not resolve"

    def test_name_is_resolved_once_and_the_checked_address_is_the_one_contacted(
            self, resolver, receiver):
        # A rebinding resolver: the first answer passes the check, a second lookup would
        # give an address nobody listens on.
        resolver.answer(HOOKS, ["127.0.0.1"], ["127.0.0.2"])
        response = post(receiver.url(host=HOOKS), allow_networks=LOOPBACK)
        assert response.status == 200
        assert resolver.calls == [HOOKS]
        assert len(receiver.requests) == 1

    def test_slow_resolver_is_cut_off_at_the_timeout(self, monkeypatch):
        def slow(*args, **kwargs):
            time.sleep(SHORT + 1)
            return []

        monkeypatch.setattr(socket, "getaddrinfo", slow)
        reason, elapsed = timed_refusal(lambda: post(f"https://{HOOKS}/hook"))
        assert reason == "timed out"
        assert elapsed < SHORT + SLACK

    def test_configured_allow_list_lets_loopback_through(self, settings, receiver):
        with_config(settings, outbound_allow=LOOPBACK)
        assert post(receiver.url()).status == 200

    def test_deny_list_wins_over_allow_list(self, receiver):
        reason = refusal(lambda: post(receiver.url(), allow_networks=("127.0.0.0/8",),
                                      deny_networks=LOOPBACK))
        assert reason == NOT_ALLOWED
        assert receiver.requests == []

    def test_configured_deny_list_refuses_a_public_address(self, settings, resolver):
        with_config(settings, outbound_deny=("93.184.215.0/24",))
        resolver.answer(HOOKS, ["93.184.215.14"])
        assert refusal(lambda: post(f"https://{HOOKS}/hook")) == RESOLVES_NOT_ALLOWED

    def test_http_is_refused_when_not_allowed(self, receiver):
        reason = refusal(lambda: post(receiver.url(), allow_http=False,
                                      allow_networks=LOOPBACK))
        assert reason == "the URL must start with https://"
        assert receiver.requests == []

    def test_redirect_is_returned_and_not_followed(self, receivers):
        target = receivers()
        redirecting = receivers(lambda h: send(h, 302, b"", {"Location": target.url()}))
        response = post(redirecting.url(), allow_networks=LOOPBACK)
        assert (response.status, response.headers["location"]) == (302, target.url())
        assert target.requests == []

    def test_response_body_is_cut_at_max_response_bytes(self, receivers):
        endless_receiver = receivers(endless)
        response = post(endless_receiver.url(), allow_networks=LOOPBACK,
                        max_response_bytes=1000)
        assert (len(response.body), response.truncated) == (1000, True)

    def test_response_body_of_exactly_max_response_bytes_is_whole(self, receivers):
        exact = receivers(lambda h: send(h, 200, b"y" * 1000))
        response = post(exact.url(), allow_networks=LOOPBACK, max_response_bytes=1000)
        assert (response.body, response.truncated) == (b"y" * 1000, False)

    def test_trickling_receiver_is_cut_off_at_the_total_timeout(self, receivers):
        slow = receivers(trickle)
        reason, elapsed = timed_refusal(lambda: post(slow.url(), allow_networks=LOOPBACK))
        assert reason == "timed out"
        assert elapsed < SHORT + SLACK

    def test_receiver_that_never_answers_times_out(self, silent_port):
        reason, elapsed = timed_refusal(lambda: post(f"http://127.0.0.1:{silent_port}/",
                                                     allow_networks=LOOPBACK))
        assert reason == "timed out"
        assert elapsed < SHORT + SLACK

    def test_tls_handshake_that_never_completes_times_out(self, silent_port):
        reason, elapsed = timed_refusal(lambda: post(f"https://127.0.0.1:{silent_port}/",
                                                     allow_networks=LOOPBACK))
        assert reason == "timed out"
        assert elapsed < SHORT + SLACK

    def test_closed_port_is_refused(self, closed_port):
        reason = refusal(lambda: post(f"http://127.0.0.1:{closed_port}/",
                                      allow_networks=LOOPBACK))
        assert reason == "connection refused"

    def test_receiver_hanging_up_without_answering_is_refused(self, receivers):
        rude = receivers(hang_up)
        reason = refusal(lambda: post(rude.url(), allow_networks=LOOPBACK))
        assert reason == "the receiver closed the connection without answering"

    def test_body_over_1_mib_is_refused_before_resolving(self, resolver):
        resolver.answer(HOOKS, ["93.184.215.14"])
        reason = refusal(lambda: post(f"https://{HOOKS}/hook", body=b"x" * (2**20 + 1)))
        assert reason == "the request body is larger than 1 MiB"
        assert resolver.calls == []

    def test_body_of_1_mib_is_delivered(self, receiver):
        response = post(receiver.url(), allow_networks=LOOPBACK, body=b"x" * 2**20, timeout=5)
        assert response.status == 200
        assert len(receiver.requests[0].body) == 2**20

    @pytest.mark.parametrize("name", ["Host", "content-length", "Transfer-Encoding",
                                      "Connection"])
    def test_framing_headers_are_refused_from_the_caller(self, receiver, name):
        reason = refusal(lambda: post(receiver.url(), allow_networks=LOOPBACK,
                                      headers={name: "1"}))
        assert reason == f"the {name} header is set by Enclave itself"
        assert receiver.requests == []

    def test_header_value_with_a_line_break_is_refused_without_repeating_it(self, receiver):
        reason = refusal(lambda: post(receiver.url(), allow_networks=LOOPBACK,
                                      headers={"X-Token": "s3cret\r\nX-Injected: 1"}))
        assert reason == "the X-Token header has characters that are not allowed"
        assert receiver.requests == []

    def test_refusal_reason_never_names_the_resolved_address_or_the_query(self, resolver):
        resolver.answer(HOOKS, ["10.20.30.40"])
        reason = refusal(lambda: post(f"https://{HOOKS}/hook?token=s3cret"))
        assert reason == RESOLVES_NOT_ALLOWED
        assert "10.20.30.40" not in reason
        assert "s3cret" not in reason

    def test_log_names_the_host_and_outcome_only(self, receiver):
        with capture_logs() as logs:
            post(receiver.url("/hook?token=s3cret"), allow_networks=LOOPBACK,
                 headers={"Authorization": "Bearer h-s3cret"})
        assert [(e["event"], e["host"], e["status"]) for e in logs] == \
            [("outbound request", "127.0.0.1", 200)]
        assert "s3cret" not in repr(logs)


class TestTls:
    @pytest.fixture
    def hooks(self, receivers, test_ca, resolver) -> Receiver:
        """An HTTPS receiver on 127.0.0.1 with a certificate for HOOKS, which resolves to
        it."""
        resolver.answer(HOOKS, ["127.0.0.1"])
        return receivers(tls=test_ca.server_context(HOOKS))

    def test_request_is_delivered_with_a_certificate_from_the_given_ca(self, hooks, test_ca):
        response = post(hooks.url(host=HOOKS), allow_http=False, allow_networks=LOOPBACK,
                        context=test_ca.client_context())
        assert (response.status, response.body) == (200, b"ok")
        assert len(hooks.requests) == 1

    def test_host_header_and_sni_are_the_original_host_name(self, hooks, test_ca):
        post(hooks.url(host=HOOKS), allow_networks=LOOPBACK, context=test_ca.client_context())
        assert hooks.requests[0].headers["host"] == f"{HOOKS}:{hooks.port}"
        assert hooks.server_names == [HOOKS]

    def test_certificate_for_another_name_is_refused(self, receivers, test_ca, resolver):
        resolver.answer(HOOKS, ["127.0.0.1"])
        impostor = receivers(tls=test_ca.server_context(OTHER))
        reason = refusal(lambda: post(impostor.url(host=HOOKS), allow_networks=LOOPBACK,
                                      context=test_ca.client_context()))
        assert reason == "TLS certificate not valid for the host"
        assert impostor.requests == []

    def test_certificate_from_an_unknown_ca_is_refused_by_default(self, hooks):
        reason = refusal(lambda: post(hooks.url(host=HOOKS), allow_networks=LOOPBACK))
        assert reason == "TLS certificate not trusted"
        assert hooks.requests == []

    def test_context_that_does_not_verify_is_rejected(self, hooks):
        lax = ssl.create_default_context()
        lax.check_hostname = False
        lax.verify_mode = ssl.CERT_NONE
        with pytest.raises(ValueError, match="must verify"):
            post(hooks.url(host=HOOKS), allow_networks=LOOPBACK, context=lax)
        assert hooks.requests == []


# --- Configuration ---------------------------------------------------------------------

class TestConfig:
    def load(self, tmp_path, **env):
        return config.load({"ENCLAVE_VAR_DIR": str(tmp_path / "var"), **env})

    def test_outbound_networks_are_empty_by_default(self, tmp_path):
        cfg = self.load(tmp_path)
        assert (cfg.outbound_allow, cfg.outbound_deny) == ((), ())

    @pytest.mark.parametrize(("name", "attribute"), [("ENCLAVE_OUTBOUND_ALLOW", "outbound_allow"),
                                                     ("ENCLAVE_OUTBOUND_DENY", "outbound_deny")])
    def test_outbound_networks_are_parsed(self, tmp_path, name, attribute):
        cfg = self.load(tmp_path, **{name: "10.0.0.5, 192.168.0.0/16,fd00::/8"})
        assert getattr(cfg, attribute) == ("10.0.0.5/32", "192.168.0.0/16", "fd00::/8")

    @pytest.mark.parametrize("name", ["ENCLAVE_OUTBOUND_ALLOW", "ENCLAVE_OUTBOUND_DENY"])
    def test_invalid_network_names_the_variable(self, tmp_path, name):
        with pytest.raises(ConfigError) as error:
            self.load(tmp_path, **{name: "10.0.0.0/8,receiver.local"})
        assert str(error.value) == (f"{name}: expected IP addresses or CIDR networks, "
                                    f"got 'receiver.local'")
