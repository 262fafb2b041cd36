"""OPC UA security of the line: certificates, Basic256Sha256 Sign&Encrypt, username login.

Self-signed application certificates are generated with ``cryptography`` for tests and
demos; a site loads the certificates its PKI issued instead. Passwords are kept as salted
PBKDF2-SHA256 hashes and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asyncua import Client, Server, ua
from asyncua.crypto.permission_rules import SimpleRoleRuleset, User, UserRole
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CLIENT_APP_URI",
    "SERVER_APP_URI",
    "CertificatePair",
    "ClientSecurity",
    "PasswordUserManager",
    "ServerSecurity",
    "apply_client_security",
    "apply_server_security",
    "generate_certificate",
    "load_or_generate_certificate",
    "parse_user",
]

SERVER_APP_URI = "urn:biopilot:line:server"
CLIENT_APP_URI = "urn:biopilot:line:client"
_PBKDF2_ROUNDS = 100_000


@dataclass(frozen=True)
class CertificatePair:
    """An application certificate (DER) and its private key (PEM), as files."""

    certificate: Path
    private_key: Path


@dataclass(frozen=True)
class ServerSecurity:
    """Sign&Encrypt with Basic256Sha256, this certificate, and these users (name -> password)."""

    certificate: CertificatePair
    users: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientSecurity:
    """The client side: its certificate and the username/password it logs in with."""

    certificate: CertificatePair
    username: str | None = None
    password: str | None = None


def generate_certificate(
    directory: str | Path,
    name: str,
    app_uri: str,
    *,
    host: str = "127.0.0.1",
    days: int = 365,
) -> CertificatePair:
    """Generate a self-signed OPC UA application certificate and key into ``directory``.

    Parameters
    ----------
    directory : str or Path
        Where ``<name>_cert.der`` and ``<name>_key.pem`` are written (created if missing).
    name : str
        Common name and file stem.
    app_uri : str
        The application URI (put in subjectAltName, as OPC UA requires).
    host : str
        Host name or IP address of the application.
    days : int
        Validity from now.

    Returns
    -------
    CertificatePair
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    alt: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(app_uri),
        x509.DNSName(socket.gethostname()),
    ]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pair = CertificatePair(out / f"{name}_cert.der", out / f"{name}_key.pem")
    pair.certificate.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    pair.private_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    pair.private_key.chmod(0o600)
    return pair


def load_or_generate_certificate(directory: str | Path, name: str, app_uri: str) -> CertificatePair:
    """Return certificate ``<name>`` of ``directory``; generate a self-signed one if absent."""
    out = Path(directory)
    pair = CertificatePair(out / f"{name}_cert.der", out / f"{name}_key.pem")
    if pair.certificate.is_file() and pair.private_key.is_file():
        return pair
    return generate_certificate(out, name, app_uri)


class PasswordUserManager:
    """Accept only the listed users with their password (salted PBKDF2, constant-time check)."""

    def __init__(self, users: dict[str, str]) -> None:
        self._hashes = {u: _hash(p, os.urandom(16)) for u, p in users.items()}

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        """Return the user if the name and password match, else None (access refused)."""
        stored = self._hashes.get(username or "")
        if stored is None or password is None:
            return None
        salt, digest = stored
        if not hmac.compare_digest(_hash(password, salt)[1], digest):
            return None
        return User(role=UserRole.User, name=username)


async def apply_server_security(server: Server, security: ServerSecurity | None) -> None:
    """Configure ``server``: no security if None, else Sign&Encrypt and username login only."""
    if security is None:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        return
    server.set_security_policy(
        [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt],
        permission_ruleset=SimpleRoleRuleset(),
    )
    server.set_identity_tokens([ua.UserNameIdentityToken])
    server.iserver.set_user_manager(PasswordUserManager(security.users))  # type: ignore[arg-type]
    await server.load_certificate(str(security.certificate.certificate))
    await server.load_private_key(str(security.certificate.private_key))


async def apply_client_security(client: Client, security: ClientSecurity | None) -> None:
    """Configure ``client`` for Sign&Encrypt with its certificate and username, if given."""
    if security is None:
        return
    client.application_uri = CLIENT_APP_URI
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        certificate=str(security.certificate.certificate),
        private_key=str(security.certificate.private_key),
        mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    if security.username is not None:
        client.set_user(security.username)
        client.set_password(security.password or "")


def parse_user(text: str) -> tuple[str, str]:
    """Split ``NAME:PASSWORD``; ValueError if either part is empty."""
    name, sep, password = text.partition(":")
    if not sep or not name or not password:
        raise ValueError(f"expected NAME:PASSWORD, got {text!r}")
    return name, password


def _hash(password: str, salt: bytes) -> tuple[bytes, bytes]:
    return salt, hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _PBKDF2_ROUNDS)
