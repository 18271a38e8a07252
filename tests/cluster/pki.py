"""The control plane's keys and certificates, made fresh for every cluster.

One CA signs the API server's serving certificate and the client certificates (it is the API
server's --client-ca-file), so a kubeconfig needs one CA file. Each component authenticates as
the user its bootstrap RBAC expects. Keys are ECDSA P-256: every Kubernetes component accepts
them and they are generated in microseconds, where RSA takes tens of milliseconds each.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from libinject.runtime import pki

VALIDITY = datetime.timedelta(days=7)  # a test cluster lives minutes; a week covers debugging

# The API server is reached on loopback and, from inside the cluster, as the `kubernetes`
# Service: the first address of --service-cluster-ip-range and its DNS names.
SERVING_NAMES = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
SERVING_ADDRESSES = ("127.0.0.1", "10.0.0.1")


@dataclass(frozen=True)
class Identity:
    """A client certificate's user name and groups."""

    user: str
    groups: tuple[str, ...] = ()


ADMIN = Identity("libinject-admin", ("system:masters",))
CONTROLLER_MANAGER = Identity("system:kube-controller-manager")
SCHEDULER = Identity("system:kube-scheduler")


@dataclass(frozen=True)
class KeyPair:
    certificate: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    ca: KeyPair
    serving: KeyPair
    service_account: KeyPair  # `certificate` holds the public key
    clients: dict[Identity, KeyPair]


def create(directory: Path, *, clients: tuple[Identity, ...]) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = pki.common_name("libinject-test-ca")
    ca_cert = _issue(
        ca_name,
        key=ca_key,
        issuer=ca_name,
        ca_key=ca_key,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (pki.key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), True),
        ],
    )
    ca = _write(directory / "ca", ca_cert, ca_key)
    serving_key = _key()
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in SERVING_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in SERVING_ADDRESSES]
    serving = _write(
        directory / "apiserver",
        _issue(
            pki.common_name("kube-apiserver"),
            key=serving_key,
            issuer=ca_name,
            ca_key=ca_key,
            extensions=[
                (x509.SubjectAlternativeName(names), False),
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
                (pki.key_usage(digital_signature=True), True),
            ],
        ),
        serving_key,
    )
    return Pki(
        ca=ca,
        serving=serving,
        service_account=_service_account_keys(directory),
        clients={
            identity: _client(directory, identity=identity, ca_key=ca_key, ca_name=ca_name)
            for identity in clients
        },
    )


def _client(
    directory: Path,
    *,
    identity: Identity,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
) -> KeyPair:
    key = _key()
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, identity.user)]
    attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in identity.groups]
    certificate = _issue(
        x509.Name(attributes),
        key=key,
        issuer=ca_name,
        ca_key=ca_key,
        extensions=[
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
            (pki.key_usage(digital_signature=True), True),
        ],
    )
    return _write(directory / identity.user.replace(":", "-"), certificate, key)


def _service_account_keys(directory: Path) -> KeyPair:
    key = _key()
    public = directory / "service-account.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    private = directory / "service-account.key"
    private.write_bytes(pki.private_pem(key))
    return KeyPair(certificate=public, key=private)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _issue(
    subject: x509.Name,
    *,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    ca_key: ec.EllipticCurvePrivateKey,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """The operator's own certificate builder (libinject.runtime.pki), with a test lifetime."""
    now = datetime.datetime.now(datetime.UTC)
    builder = pki.certificate_builder(
        subject=subject, issuer=issuer, key=key, now=now, not_after=now + VALIDITY
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(ca_key, hashes.SHA256())


def _write(stem: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> KeyPair:
    pair = KeyPair(certificate=stem.with_suffix(".crt"), key=stem.with_suffix(".key"))
    pair.certificate.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    pair.key.write_bytes(pki.private_pem(key))
    pair.key.chmod(0o600)
    return pair
