"""The embedded TLS material and policy: local CA, leaf certificate, key files, context."""

from __future__ import annotations

import configparser
import datetime as dt
import ipaddress
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from enclave import config
from enclave.server import tls


def load_config(tmp_path, **env: str) -> config.Config:
    return config.load({"ENCLAVE_ENV": "test", "ENCLAVE_VAR_DIR": str(tmp_path / "var"), **env})


def read_leaf(cfg: config.Config) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cfg.tls_cert.read_bytes())


def read_ca(cfg: config.Config) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cfg.tls_ca.read_bytes())


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def cfg(tmp_path) -> config.Config:
    """A fresh var/ directory with the local CA and leaf issued."""
    cfg = load_config(tmp_path)
    assert tls.ensure_certificates(cfg) is True
    return cfg


class TestLeafCertificate:
    def test_leaf_has_subject_key_identifier_of_its_key(self, cfg):
        leaf = read_leaf(cfg)
        ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert ski == x509.SubjectKeyIdentifier.from_public_key(leaf.public_key())

    def test_leaf_authority_key_identifier_is_the_ca_subject_key_identifier(self, cfg):
        aki = read_leaf(cfg).extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        ca_ski = read_ca(cfg).extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        assert aki.value.key_identifier == ca_ski.value.digest

    def test_key_usage_is_digital_signature_only_and_critical(self, cfg):
        ku = read_leaf(cfg).extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical
        assert ku.value.digital_signature
        assert (ku.value.key_encipherment, ku.value.key_cert_sign, ku.value.crl_sign) == (
            False, False, False)

    def test_extended_key_usage_is_server_auth_only(self, cfg):
        eku = read_leaf(cfg).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH]

    def test_leaf_is_not_a_ca(self, cfg):
        bc = read_leaf(cfg).extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical
        assert bc.value.ca is False

    def test_san_covers_localhost_and_both_loopback_addresses(self, cfg):
        san = read_leaf(cfg).extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]
        assert set(san.value.get_values_for_type(x509.IPAddress)) == {
            ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")}

    def test_san_includes_configured_public_host(self, tmp_path):
        cfg = load_config(tmp_path, ENCLAVE_PUBLIC_URL="https://enclave.test")
        tls.ensure_certificates(cfg)
        san = read_leaf(cfg).extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert san.value.get_values_for_type(x509.DNSName) == ["localhost", "enclave.test"]

    def test_lifetime_is_at_most_366_days(self, cfg):
        leaf = read_leaf(cfg)
        assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=366)

    def test_key_is_ecdsa_p256(self, cfg):
        key = read_leaf(cfg).public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.name == "secp256r1"

    def test_leaf_is_signed_by_the_local_ca(self, cfg):
        read_leaf(cfg).verify_directly_issued_by(read_ca(cfg))

    def test_served_chain_is_the_leaf_alone(self, cfg):
        # Sending the trust anchor too is flagged by scanners and helps no client.
        assert cfg.tls_cert.read_text().count("BEGIN CERTIFICATE") == 1


class TestKeyFiles:
    def test_leaf_key_is_owner_only(self, cfg):
        assert mode(cfg.tls_key) == 0o600

    def test_ca_key_is_owner_only(self, cfg):
        assert mode(tls.ca_key_path(cfg)) == 0o600

    def test_ca_key_lives_in_the_secrets_directory(self, cfg):
        assert tls.ca_key_path(cfg).parent == cfg.secrets_dir
        assert tls.ca_key_path(cfg).is_file()

    def test_tls_directory_holds_no_ca_private_key(self, cfg):
        ca_public = read_ca(cfg).public_key()
        private = [p for p in sorted(cfg.tls_dir.iterdir()) if b"PRIVATE KEY" in p.read_bytes()]
        # Positive control: the one private key there is found (the leaf's) and compared.
        assert [p.name for p in private] == ["server.key"]
        key = serialization.load_pem_private_key(private[0].read_bytes(), password=None)
        assert key.public_key() != ca_public, f"{private[0]} is the CA key"

    def test_live_server_key_files_are_owner_only(self, live_enclave):
        assert mode(live_enclave.var_dir / "tls" / "server.key") == 0o600
        assert mode(live_enclave.var_dir / "secrets" / "tls-ca.key") == 0o600
        assert not (live_enclave.var_dir / "tls" / "tls-ca.key").exists()


class TestRenewal:
    def clock_at(self, monkeypatch, cfg, days_left: float) -> None:
        """Move tls's clock to when the current leaf has ``days_left`` days to run."""
        moment = read_leaf(cfg).not_valid_after_utc - dt.timedelta(days=days_left)
        monkeypatch.setattr(tls, "_now", lambda: moment)

    def test_fresh_leaf_is_kept(self, cfg):
        before = cfg.tls_cert.read_bytes()
        assert tls.ensure_certificates(cfg) is False
        assert cfg.tls_cert.read_bytes() == before

    def test_leaf_with_29_days_left_is_renewed(self, cfg, monkeypatch):
        old_serial = read_leaf(cfg).serial_number
        self.clock_at(monkeypatch, cfg, days_left=29)
        assert tls.ensure_certificates(cfg) is True
        assert read_leaf(cfg).serial_number != old_serial

    def test_leaf_with_31_days_left_is_kept(self, cfg, monkeypatch):
        self.clock_at(monkeypatch, cfg, days_left=31)
        assert tls.ensure_certificates(cfg) is False

    def test_renewal_keeps_the_local_ca(self, cfg, monkeypatch):
        ca_before = cfg.tls_ca.read_bytes()
        self.clock_at(monkeypatch, cfg, days_left=1)
        tls.ensure_certificates(cfg)
        assert cfg.tls_ca.read_bytes() == ca_before
        read_leaf(cfg).verify_directly_issued_by(read_ca(cfg))

    def test_missing_key_triggers_renewal(self, cfg):
        cfg.tls_key.unlink()
        assert tls.ensure_certificates(cfg) is True
        assert mode(cfg.tls_key) == 0o600


class TestServerContext:
    @pytest.fixture
    def ctx(self, cfg) -> ssl.SSLContext:
        return tls.server_context(cfg.tls_cert, cfg.tls_key)

    def test_only_tls12_and_tls13_are_enabled(self, ctx):
        assert (ctx.minimum_version, ctx.maximum_version) == (
            ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)

    def test_compression_renegotiation_and_tickets_are_off(self, ctx):
        required = ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_TICKET
        assert ctx.options & required == required

    def test_no_tls13_session_tickets_are_issued(self, ctx):
        assert ctx.num_tickets == 0

    def test_server_order_applies_with_chacha_priority(self, ctx):
        required = ssl.OP_CIPHER_SERVER_PREFERENCE | tls.OP_PRIORITIZE_CHACHA
        assert ctx.options & required == required

    def test_tls12_suites_are_exactly_the_policy_in_order(self, ctx):
        tls12 = [c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"]
        assert tls12 == tls.TLS12_CIPHERS.split(":")


class TestOpensslConf:
    @pytest.fixture
    def section(self) -> configparser.SectionProxy:
        parser = configparser.ConfigParser(inline_comment_prefixes=("#",))
        parser.optionxform = str  # type: ignore[assignment]  # keep OpenSSL's key case
        parser.read_string("[top]\n" + tls.OPENSSL_CNF.read_text())
        return parser["enclave_system_default"]

    def test_groups_are_the_policy_groups(self, section):
        assert section["Groups"] == ":".join(tls.GROUPS)

    def test_tls13_suites_are_the_policy_suites(self, section):
        assert section["Ciphersuites"] == tls.TLS13_CIPHERSUITES

    def test_minimum_protocol_is_the_policy_minimum(self, section):
        assert section["MinProtocol"] == min(tls.PROTOCOLS).name.replace("_", ".")

    def test_session_tickets_are_disabled(self, section):
        assert section["Options"] == "-SessionTicket"


def ca_key(cfg: config.Config) -> ec.EllipticCurvePrivateKey:
    return serialization.load_pem_private_key(tls.ca_key_path(cfg).read_bytes(), password=None)


def leaf_for(cfg: config.Config, name: x509.GeneralName) -> x509.Certificate:
    """A server certificate for ``name`` signed with the local CA's key (as a thief of
    that key would make one)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    ca = read_ca(cfg)
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stolen")]))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([name]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()),
                       critical=False)
        .sign(ca_key(cfg), hashes.SHA256())
    )


def verify(cfg: config.Config, leaf: x509.Certificate, name) -> None:
    """Verify ``leaf`` for server name ``name`` with the local CA as the only trust anchor
    (cryptography's RFC 5280 / CA/B path validation, which applies name constraints)."""
    from cryptography.x509 import verification

    try:
        subject = verification.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        subject = verification.DNSName(name)
    verifier = (verification.PolicyBuilder().store(verification.Store([read_ca(cfg)]))
                .build_server_verifier(subject))
    verifier.verify(leaf, [])


def name_constraints(cfg: config.Config) -> x509.Extension:
    return read_ca(cfg).extensions.get_extension_for_class(x509.NameConstraints)


LOOPBACKS = [x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")),
             x509.IPAddress(ipaddress.ip_network("::1/128"))]


class TestNameConstraints:
    """The local CA can only certify the names the leaf needs, even with a stolen key."""

    def test_ca_name_constraints_are_critical(self, cfg):
        assert name_constraints(cfg).critical

    def test_ca_permits_exactly_localhost_and_the_loopback_addresses(self, cfg):
        value = name_constraints(cfg).value
        assert value.permitted_subtrees == [x509.DNSName("localhost"), *LOOPBACKS]
        assert value.excluded_subtrees is None

    def test_ca_also_permits_the_configured_public_dns_name(self, tmp_path):
        cfg = load_config(tmp_path, ENCLAVE_PUBLIC_URL="https://enclave.test")
        tls.ensure_certificates(cfg)
        assert name_constraints(cfg).value.permitted_subtrees == [
            x509.DNSName("localhost"), x509.DNSName("enclave.test"), *LOOPBACKS]

    def test_public_ip_host_is_permitted_as_exactly_that_address(self, tmp_path):
        cfg = load_config(tmp_path, ENCLAVE_PUBLIC_URL="https://192.0.2.10:8443")
        tls.ensure_certificates(cfg)
        assert name_constraints(cfg).value.permitted_subtrees == [
            x509.DNSName("localhost"), LOOPBACKS[0],
            x509.IPAddress(ipaddress.ip_network("192.0.2.10/32")), LOOPBACKS[1]]

    def test_public_ipv6_host_is_permitted_as_exactly_that_address(self, tmp_path):
        cfg = load_config(tmp_path, ENCLAVE_PUBLIC_URL="https://[2001:db8::5]")
        tls.ensure_certificates(cfg)
        assert x509.IPAddress(ipaddress.ip_network("2001:db8::5/128")) in \
            name_constraints(cfg).value.permitted_subtrees

    def test_public_ip_host_is_in_the_leaf_as_an_ip_address(self, tmp_path):
        cfg = load_config(tmp_path, ENCLAVE_PUBLIC_URL="https://192.0.2.10")
        tls.ensure_certificates(cfg)
        san = read_leaf(cfg).extensions.get_extension_for_class(x509.SubjectAlternativeName)
        assert ipaddress.ip_address("192.0.2.10") in san.value.get_values_for_type(
            x509.IPAddress)
        assert san.value.get_values_for_type(x509.DNSName) == ["localhost"]

    @pytest.mark.parametrize("name", ["localhost", "enclave.test", "127.0.0.1", "::1"])
    def test_leaf_verifies_for_every_permitted_name(self, tmp_path, name):
        cfg = load_config(tmp_path, ENCLAVE_PUBLIC_URL="https://enclave.test")
        tls.ensure_certificates(cfg)
        verify(cfg, read_leaf(cfg), name)

    @pytest.mark.parametrize(("san", "name"), [
        (x509.DNSName("bank.example"), "bank.example"),
        (x509.DNSName("www.google.com"), "www.google.com"),
        (x509.IPAddress(ipaddress.ip_address("192.0.2.99")), "192.0.2.99"),
        (x509.IPAddress(ipaddress.ip_address("127.0.0.2")), "127.0.0.2"),
    ])
    def test_leaf_for_another_name_signed_by_the_ca_fails_verification(
            self, cfg, san, name):
        from cryptography.x509.verification import VerificationError

        with pytest.raises(VerificationError, match="name constraint"):
            verify(cfg, leaf_for(cfg, san), name)


def write_unconstrained_ca(cfg: config.Config) -> None:
    """A local CA and leaf as versions before name constraints made them."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Enclave local CA")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
          .public_key(key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(ski, critical=False)
          .sign(key, hashes.SHA256()))
    cfg.tls_dir.mkdir(parents=True, exist_ok=True)
    cfg.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    tls.ca_key_path(cfg).write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    cfg.tls_ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    leaf = leaf_for(cfg, x509.DNSName("localhost"))
    cfg.tls_cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    cfg.tls_key.write_bytes(tls.ca_key_path(cfg).read_bytes())  # any key: it is replaced


class TestCaReplacement:
    """Installs made before name constraints, or for another public host, get a new
    constrained CA and leaf on the next start, and say so."""

    def test_unconstrained_ca_is_replaced_with_a_constrained_one(self, tmp_path):
        cfg = load_config(tmp_path)
        write_unconstrained_ca(cfg)
        old_key = tls.ca_key_path(cfg).read_bytes()
        assert tls.ensure_certificates(cfg) is True
        assert name_constraints(cfg).critical
        assert tls.ca_key_path(cfg).read_bytes() != old_key

    def test_replacing_the_ca_issues_a_leaf_it_signed(self, tmp_path):
        cfg = load_config(tmp_path)
        write_unconstrained_ca(cfg)
        tls.ensure_certificates(cfg)
        verify(cfg, read_leaf(cfg), "localhost")

    def test_replacement_is_announced_with_the_reason(self, tmp_path, caplog):
        cfg = load_config(tmp_path)
        write_unconstrained_ca(cfg)
        tls.ensure_certificates(cfg)
        [record] = [r for r in caplog.records if r.name == "enclave.server.tls"]
        assert record.levelname == "WARNING"
        assert "replaced the local CA" in record.getMessage()
        assert "no name constraints" in record.getMessage()

    def test_changing_the_public_host_replaces_the_ca(self, tmp_path):
        first = load_config(tmp_path, ENCLAVE_PUBLIC_URL="https://old.example")
        tls.ensure_certificates(first)
        old_ca = first.tls_ca.read_bytes()
        cfg = load_config(tmp_path, ENCLAVE_PUBLIC_URL="https://new.example")
        assert tls.ensure_certificates(cfg) is True
        assert cfg.tls_ca.read_bytes() != old_ca
        assert x509.DNSName("old.example") not in name_constraints(cfg).value.permitted_subtrees
        verify(cfg, read_leaf(cfg), "new.example")

    def test_fitting_ca_is_kept_silently(self, cfg, caplog):
        ca_before = cfg.tls_ca.read_bytes()
        cfg.tls_cert.unlink()
        tls.ensure_certificates(cfg)
        assert cfg.tls_ca.read_bytes() == ca_before
        assert not [r for r in caplog.records if r.name == "enclave.server.tls"]

    def test_leaf_from_another_ca_is_reissued(self, cfg, tmp_path):
        other = load_config(tmp_path / "other")
        tls.ensure_certificates(other)
        cfg.tls_cert.write_bytes(other.tls_cert.read_bytes())
        assert tls.ensure_certificates(cfg) is True
        read_leaf(cfg).verify_directly_issued_by(read_ca(cfg))
