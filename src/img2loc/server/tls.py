"""HTTPS for the local network: a certificate made on this machine, and a QR code to open it.

Phones give a web page the camera (and threads, through cross-origin isolation) only
over ``https://``. ``img2loc serve --https --host 0.0.0.0`` uses a certificate from
:func:`ensure_certificate`:

* a local certificate authority, made once and kept (key readable by its owner only)
  in the user's data folder. It is *name-constrained*: it can only vouch for private
  network addresses (10/8, 172.16/12, 192.168/16, 169.254/16, fd00::/8, loopback) and
  ``localhost`` / ``*.local`` names, so trusting it on a phone trusts nothing on the
  internet, even if its key were stolen;
* a server certificate signed by it for this machine's current addresses, remade when
  they change or it nears its end (397 days, the most Apple devices accept).

The browser warns about an unknown certificate until the phone trusts the authority;
that warning can be clicked through for a session, and ``/img2loc-ca.crt`` serves the
authority's certificate to install (see the README, "On a phone").
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from img2loc.errors import Img2locError
from img2loc.files import atomic_write_bytes

#: Networks the local authority may vouch for.
PRIVATE_NETS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "127.0.0.0/8",
    "fd00::/8",
    "fe80::/10",
    "::1/128",
)
LEAF_DAYS = 397
CA_DAYS = 3650


class TlsError(Img2locError, ValueError):
    """HTTPS cannot be set up as asked; the message says how to fix it."""


def data_dir() -> Path:
    """Where the certificates live: ``$IMG2LOC_HOME/https`` or the XDG data folder."""
    root = os.environ.get("IMG2LOC_HOME")
    if root:
        return Path(root) / "https"
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "img2loc" / "https"


def lan_address() -> str | None:
    """This machine's address on the local network (the route to a private address), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # UDP: nothing is sent
            addr = str(s.getsockname()[0])
        except OSError:
            return None
    return None if addr.startswith(("127.", "0.")) else addr


@dataclass(frozen=True)
class Certificate:
    """Files of a server certificate and of the authority that signed it."""

    cert: Path
    key: Path
    ca_cert: Path
    names: tuple[str, ...]

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def fingerprint(self) -> str:
        """SHA-256 fingerprint of the authority (to compare with what the phone shows)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        c = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        return ":".join(f"{b:02X}" for b in c.fingerprint(hashes.SHA256()))


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    path.chmod(0o600)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _check_private(names: list[str]) -> None:
    nets = [ipaddress.ip_network(n) for n in PRIVATE_NETS]
    for n in names:
        if _is_ip(n):
            ip = ipaddress.ip_address(n)
            if not any(ip.version == net.version and ip in net for net in nets):
                raise TlsError(
                    f"{n} is not a private network address; --https makes certificates for "
                    "the local network only (use a real certificate for a public server)"
                )
        elif n != "localhost" and not n.endswith(".local"):
            raise TlsError(f"{n}: --https certifies localhost, *.local names and private addresses")


def ensure_certificate(names: list[str], folder: Path | None = None) -> Certificate:
    """A server certificate for ``names`` (IPs and host names), made or reused.

    Raises :class:`TlsError` for names outside the local network.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    names = sorted(set(names) | {"localhost", "127.0.0.1"})
    _check_private(names)
    folder = folder or data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    ca_cert_p, ca_key_p = folder / "img2loc-ca.crt", folder / "img2loc-ca.key"
    cert_p, key_p = folder / "server.crt", folder / "server.key"
    now = dt.datetime.now(dt.UTC)
    pem = serialization.Encoding.PEM
    no_pw = serialization.NoEncryption()
    pkcs8 = serialization.PrivateFormat.PKCS8

    ca_key: Any
    ca: Any
    if ca_cert_p.is_file() and ca_key_p.is_file():
        ca = x509.load_pem_x509_certificate(ca_cert_p.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_p.read_bytes(), None)
        if ca.not_valid_after_utc < now + dt.timedelta(days=LEAF_DAYS + 1):
            ca = None
    else:
        ca = None
    if ca is None:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        host = socket.gethostname()[:40] or "this computer"
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "img2loc local network"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"img2loc on {host}"),
            ]
        )
        permitted: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_network(n)) for n in PRIVATE_NETS
        ]
        permitted += [x509.DNSName("localhost"), x509.DNSName("local")]
        ca = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(x509.NameConstraints(permitted, None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
            .sign(ca_key, hashes.SHA256())
        )
        _write_private(ca_key_p, ca_key.private_bytes(pem, pkcs8, no_pw))
        atomic_write_bytes(ca_cert_p, ca.public_bytes(pem))
        cert_p.unlink(missing_ok=True)

    if cert_p.is_file() and key_p.is_file():
        leaf = x509.load_pem_x509_certificate(cert_p.read_bytes())
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            have = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
            have |= set(san.get_values_for_type(x509.DNSName))
        except x509.ExtensionNotFound:
            have = set()
        fresh = leaf.not_valid_after_utc > now + dt.timedelta(days=7)
        if fresh and set(names) <= have and leaf.issuer == ca.subject:
            return Certificate(cert_p, key_p, ca_cert_p, tuple(names))
    key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address(n)) if _is_ip(n) else x509.DNSName(n) for n in names
    ]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_p, key.private_bytes(pem, pkcs8, no_pw))
    atomic_write_bytes(cert_p, leaf.public_bytes(pem))
    return Certificate(cert_p, key_p, ca_cert_p, tuple(names))


def print_qr(url: str, out: TextIO | None = None) -> None:
    """A QR code of ``url`` in the terminal (scan it with the phone's camera)."""
    import segno

    out = out or sys.stdout
    segno.make(url, error="m").terminal(out=out, compact=True)
