"""`img2loc serve --https`: the local authority, the server certificate, a QR code."""

from __future__ import annotations

import http.client
import io
import ssl
import stat
import threading
from pathlib import Path

import pytest

from img2loc.server import make_server
from img2loc.server.tls import TlsError, ensure_certificate, print_qr
from tests.inference.conftest import make_model_dir


def test_certificate_is_made_once_and_remade_for_new_addresses(tmp_path: Path) -> None:
    from cryptography import x509

    c1 = ensure_certificate(["192.168.1.20"], tmp_path)
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    assert stat.S_IMODE(c1.key.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(c1.ca_cert.read_bytes())
    nc = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical and nc.value.permitted_subtrees  # only the local network
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0
    leaf = x509.load_pem_x509_certificate(c1.cert.read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(i) for i in san.get_values_for_type(x509.IPAddress)} == {
        "192.168.1.20",
        "127.0.0.1",
    }
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days <= 398  # Apple's limit
    before = c1.cert.read_bytes()
    assert ensure_certificate(["192.168.1.20"], tmp_path).cert.read_bytes() == before
    c3 = ensure_certificate(["10.0.0.7"], tmp_path)  # the laptop moved to another network
    assert c3.cert.read_bytes() != before
    assert c3.ca_cert.read_bytes() == c1.ca_cert.read_bytes()  # the phone's trust still holds
    assert len(c3.fingerprint().split(":")) == 32


@pytest.mark.parametrize("name", ["8.8.8.8", "example.com", "2001:4860::8888"])
def test_only_the_local_network_is_certified(tmp_path: Path, name: str) -> None:
    with pytest.raises(TlsError, match=r"local network|localhost"):
        ensure_certificate([name], tmp_path)


def test_https_server_is_trusted_with_the_local_authority(tmp_path: Path) -> None:
    cert = ensure_certificate([], tmp_path / "tls")
    model = make_model_dir(tmp_path / "m")
    srv = make_server(model, "127.0.0.1", 0, tls=cert)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        port = srv.server_address[1]
        ctx = ssl.create_default_context(cafile=str(cert.ca_cert))
        for host in ("127.0.0.1", "localhost"):
            c = http.client.HTTPSConnection(host, port, context=ctx, timeout=10)
            c.request("GET", "/")
            r = r_ok = c.getresponse()
            assert r_ok.status == 200 and r.getheader("Cross-Origin-Embedder-Policy")
            r.read()
            c.request("GET", "/img2loc-ca.crt")
            r = c.getresponse()
            assert r.status == 200 and r.read() == cert.ca_cert.read_bytes()
            assert r.getheader("Content-Type") == "application/x-x509-ca-cert"
            c.close()
        with pytest.raises(ssl.SSLError):  # an untrusted client refuses it, as it should
            c = http.client.HTTPSConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/")
    finally:
        srv.shutdown()
        srv.server_close()


def test_qr_code_in_the_terminal() -> None:
    out = io.StringIO()
    print_qr("https://192.168.1.20:8000/", out)
    lines = out.getvalue().splitlines()
    assert len(lines) > 10 and all(len(line) == len(lines[0]) for line in lines)
    assert any("█" in line or "▀" in line or "▄" in line for line in lines)


def test_serve_https_refuses_a_public_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from img2loc.cli import app

    monkeypatch.setenv("IMG2LOC_HOME", str(tmp_path))
    model = make_model_dir(tmp_path / "m")
    r = CliRunner().invoke(
        app, ["serve", "--model", str(model), "--https", "--host", "203.0.113.1", "--port", "0"]
    )
    assert r.exit_code != 0
    assert "not a private network address" in r.output
    assert not (tmp_path / "https" / "img2loc-ca.key").exists()
