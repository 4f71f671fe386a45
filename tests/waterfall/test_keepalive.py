"""The direct transport to a vendor (core/sources/keepalive.py) over real sockets: TLS verified
against the CA bundle requests would use (an untrusted certificate is a network error, never an
answer), connections shared by the source's threads, and a kept-alive connection the vendor closed
while idle never used again (the next call opens a new one; nothing is sent twice)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.sources.http_provider import USER_AGENT, HttpProviderSource, ProviderConfig, ProviderHttpError
from core.sources.keepalive import KeepAliveHost
from tests.waterfall.test_http_provider import person
from tests.waterfall.vendor_server import VendorServer, hunter_found

_ANSWER = b'{"data": {"email": "jane.doe@acme.test", "score": 90, "verification": {"status": "valid"}}}'


def _issue(common_name: str, tmp: Path, ip: str = "127.0.0.1") -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for `ip`: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def build(subject, issuer, key, signer, *, ca: bool, san: bool):
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ca = build(ca_name, ca_name, ca_key, ca_key, ca=True, san=False)
    leaf = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]), ca_name, key, ca_key,
                 ca=False, san=True)
    paths = tmp / f"{common_name}-ca.pem", tmp / f"{common_name}-cert.pem", tmp / f"{common_name}-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class _RawVendor:
    """Answers each GET with `_ANSWER` on kept-alive connections; `close_idle` hangs up on a client
    right after answering it (as a vendor's idle timeout does, without a `Connection: close`)."""

    def __init__(self, tls: ssl.SSLContext | None = None, *, close_idle: bool = False) -> None:
        self.tls, self.close_idle = tls, close_idle
        self.requests = 0
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            buffer = b""
            while chunk := conn.recv(65536):
                buffer += chunk
                while b"\r\n\r\n" in buffer:
                    _, _, buffer = buffer.partition(b"\r\n\r\n")
                    self.requests += 1
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(_ANSWER)).encode() + b"\r\n\r\n" + _ANSWER)
                    if self.close_idle:
                        conn.close()
                        return
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._sock.close()


def _source(base_url: str) -> HttpProviderSource:
    return HttpProviderSource(ProviderConfig(name="hunter", base_url=base_url, api_key="k", max_attempts=1))


def _tls_vendor(cert: Path, key: Path) -> _RawVendor:
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    return _RawVendor(server_tls)


def test_tls_is_verified_against_the_ca_bundle_and_an_untrusted_certificate_is_refused(
    tmp_path, monkeypatch
) -> None:
    ca, cert, key = _issue("tributary-test-ca", tmp_path)
    stranger_ca, _, _ = _issue("some-other-ca", tmp_path)
    vendor = _tls_vendor(cert, key)
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
        trusted = _source(f"https://127.0.0.1:{vendor.port}")
        assert trusted._direct is not None  # the direct transport, not urllib3's
        assert trusted.find_email(person()).address == "jane.doe@acme.test"
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stranger_ca))
        with pytest.raises(ProviderHttpError) as refused:
            _source(f"https://127.0.0.1:{vendor.port}").find_email(person())
        assert refused.value.outcome == "network_error"
        assert vendor.requests == 1  # the refused handshake sent no request
    finally:
        vendor.close()


def test_a_trusted_certificate_for_another_address_is_refused(tmp_path, monkeypatch) -> None:
    ca, cert, key = _issue("tributary-test-ca", tmp_path, ip="127.0.0.2")  # signed by a trusted CA, wrong name
    vendor = _tls_vendor(cert, key)
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
        with pytest.raises(ProviderHttpError) as refused:
            _source(f"https://127.0.0.1:{vendor.port}").find_email(person())
        assert refused.value.outcome == "network_error" and vendor.requests == 0
    finally:
        vendor.close()


def test_a_missing_ca_bundle_fails_the_call_not_the_source(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "gone.pem"))
    source = HttpProviderSource(ProviderConfig(name="hunter", base_url="https://127.0.0.1:9", api_key="k",
                                               max_attempts=1))  # built: the providers' set-up goes on
    with pytest.raises(ProviderHttpError) as failed:
        source.find_email(person())
    assert failed.value.outcome == "network_error"


def test_a_bare_ipv6_base_url_gets_its_schemes_port() -> None:
    assert KeepAliveHost("https://[::1]/v2/email-finder", timeout_s=1, max_idle=1).port == 443
    assert KeepAliveHost("http://[::1]/v2/email-finder", timeout_s=1, max_idle=1).port == 80
    assert KeepAliveHost("http://[::1]:8080/x", timeout_s=1, max_idle=1).port == 8080


def test_a_connection_the_vendor_closed_while_idle_is_not_used_again() -> None:
    vendor = _RawVendor(close_idle=True)
    try:
        source = _source(f"http://127.0.0.1:{vendor.port}")
        for _ in range(3):
            assert source.find_email(person()).address == "jane.doe@acme.test"
            source._memo.clear()  # ask the vendor again
            threading.Event().wait(0.05)  # the hang-up reaches us before the next call
        assert vendor.requests == 3 and vendor.connections == 3  # each call once, each on a new connection
    finally:
        vendor.close()


def test_threads_share_the_kept_alive_connections() -> None:
    with VendorServer(keep_alive=True) as vendor:
        vendor.default = lambda params: hunter_found("jane.doe@acme.test")
        assert _source(vendor.base_url).find_email(person()).address == "jane.doe@acme.test"
        assert vendor.seen[0].headers["User-Agent"] == USER_AGENT  # some vendors' firewalls refuse none
        vendor.seen.clear()
        host = KeepAliveHost(f"{vendor.base_url}/v2/email-finder", timeout_s=5, max_idle=4)
        with ThreadPoolExecutor(4) as pool:
            for _ in range(3):  # rounds of four calls at once, then idle
                replies = list(pool.map(lambda n: host.get(f"/v2/email-finder?n={n}", {}), range(4)))
                assert {r.status for r in replies} == {200}
        assert vendor.calls == 12
        assert len({s.client_port for s in vendor.seen}) <= 4  # at most one connection per caller at once
        host.close()
