"""The webhook's TLS certificates, as pure functions.

The operator serves its admission webhook with a CA of its own: it makes the CA and a serving
certificate (`new_material`), decides when they must be replaced (`renew`), and keeps them in a
Secret shared by its replicas (`to_secret_data`, `from_secret_data`). The CA bundle goes into the
MutatingWebhookConfiguration's caBundle.

Nothing here reads files, talks to the cluster or reads the clock: the caller passes `now`, so
every decision about expiry is deterministic and the shell around it stays thin.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, TypeAlias, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_CA_LIFETIME = timedelta(days=3 * 365)
DEFAULT_SERVING_LIFETIME = timedelta(days=90)
CA_COMMON_NAME = "libinject-webhook-ca"

# Certificates start a little before `now`, so that a node whose clock runs behind ours does not
# reject them as not yet valid.
CLOCK_SKEW = timedelta(minutes=5)

# The keys of the Secret's `data`. `tls.crt`/`tls.key` follow the kubernetes.io/tls convention so
# the serving pair can be mounted as is; the CA's key sits beside it so any replica can renew.
SERVING_CERT_KEY = "tls.crt"
SERVING_KEY_KEY = "tls.key"
BUNDLE_KEY = "ca.crt"
AUTHORITY_CERT_KEY = "authority.crt"
AUTHORITY_KEY_KEY = "authority.key"
SECRET_KEYS = (SERVING_CERT_KEY, SERVING_KEY_KEY, BUNDLE_KEY, AUTHORITY_CERT_KEY, AUTHORITY_KEY_KEY)

# The keys this module can sign with: what it generates (EC), and RSA for a hand-made CA.
_SigningKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_T = TypeVar("_T")


class InvalidMaterial(ValueError):  # noqa: N818 - the name the shell catches
    """The Secret's data is not usable material; the message names the key at fault."""


@dataclass(frozen=True)
class KeyPair:
    certificate: bytes  # PEM
    key: bytes  # PEM (PKCS#8, unencrypted)


@dataclass(frozen=True)
class Material:
    """What the Secret holds: the CA(s) and the serving certificate."""

    authority: KeyPair  # the current CA (signs the serving certificate)
    serving: KeyPair  # the serving certificate, signed by `authority`, for the hosts
    bundle: bytes  # PEM of every CA the webhook's clients must trust: current first, then previous


class _Issuer(NamedTuple):
    certificate: x509.Certificate
    key: _SigningKey


def new_material(
    *,
    hosts: Sequence[str],
    now: datetime,
    ca_lifetime: timedelta = DEFAULT_CA_LIFETIME,
    serving_lifetime: timedelta = DEFAULT_SERVING_LIFETIME,
) -> Material:
    """A new CA, and a serving certificate for `hosts` signed by it."""
    now = _utc(now)
    authority = _new_authority(now, ca_lifetime)
    serving = _new_serving(authority, hosts=hosts, now=now, lifetime=serving_lifetime)
    return Material(authority=authority, serving=serving, bundle=authority.certificate)


def renew(
    material: Material,
    *,
    hosts: Sequence[str],
    now: datetime,
    ca_lifetime: timedelta = DEFAULT_CA_LIFETIME,
    serving_lifetime: timedelta = DEFAULT_SERVING_LIFETIME,
) -> Material | None:
    """None when nothing needs to change, otherwise the material to store instead.

    The serving certificate is replaced when it is in the last third of its lifetime (or not
    valid at `now`), does not cover every host, or was not signed by the current CA. The CA is
    replaced on the same terms of time, and then the outgoing CA stays in the bundle until it
    expires: a replica still serving the old certificate keeps being trusted during the rotation.
    """
    now = _utc(now)
    current = _certificate(material.authority.certificate)
    if _due(current, now):
        authority = _new_authority(now, ca_lifetime)
        bundle = _pem(_trusted([_certificate(authority.certificate), current], now))
        serving = _new_serving(authority, hosts=hosts, now=now, lifetime=serving_lifetime)
        return Material(authority=authority, serving=serving, bundle=bundle)
    bundle = _pruned(material.bundle, current, now)
    if not _serving_fits(material.serving, current, hosts=hosts, now=now):
        serving = _new_serving(material.authority, hosts=hosts, now=now, lifetime=serving_lifetime)
        return replace(material, serving=serving, bundle=bundle)
    return None if bundle == material.bundle else replace(material, bundle=bundle)


def expiry(certificate_pem: bytes) -> datetime:
    """The notAfter of the first certificate in `certificate_pem`, timezone-aware UTC."""
    return _certificate(certificate_pem).not_valid_after_utc


def to_secret_data(material: Material) -> dict[str, str]:
    """The Secret's `data`: each PEM in base64 text."""
    pems = {
        SERVING_CERT_KEY: material.serving.certificate,
        SERVING_KEY_KEY: material.serving.key,
        BUNDLE_KEY: material.bundle,
        AUTHORITY_CERT_KEY: material.authority.certificate,
        AUTHORITY_KEY_KEY: material.authority.key,
    }
    return {name: base64.b64encode(pem).decode("ascii") for name, pem in pems.items()}


def from_secret_data(data: Mapping[str, str]) -> Material:
    """The inverse of `to_secret_data`; raises InvalidMaterial on anything it cannot use."""
    pems = {name: _decoded(data, name) for name in SECRET_KEYS}
    _parsed(BUNDLE_KEY, pems[BUNDLE_KEY], x509.load_pem_x509_certificates)
    return Material(
        authority=_matching_pair(pems, AUTHORITY_CERT_KEY, AUTHORITY_KEY_KEY),
        serving=_matching_pair(pems, SERVING_CERT_KEY, SERVING_KEY_KEY),
        bundle=pems[BUNDLE_KEY],
    )


# --- issuing ---------------------------------------------------------------------------------


def _new_authority(now: datetime, lifetime: timedelta) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())  # P-256: quick to generate, every client has it
    name = common_name(CA_COMMON_NAME)
    certificate = (
        certificate_builder(subject=name, issuer=name, key=key, now=now, not_after=now + lifetime)
        # path_length=0: this CA signs serving certificates only, never another CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return _pair(certificate, key)


def _new_serving(
    authority: KeyPair, *, hosts: Sequence[str], now: datetime, lifetime: timedelta
) -> KeyPair:
    names = _general_names(hosts)
    issuer = _issuer(authority)
    key = ec.generate_private_key(ec.SECP256R1())
    # A leaf that outlives its CA would only be rejected later; end it with the CA instead.
    not_after = min(now + lifetime, issuer.certificate.not_valid_after_utc)
    certificate = (
        certificate_builder(
            subject=common_name(hosts[0]),
            issuer=issuer.certificate.subject,
            key=key,
            now=now,
            not_after=not_after,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # No keyEncipherment: an EC key signs the TLS handshake, it never wraps a secret.
        .add_extension(key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(_authority_key_id(issuer), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )
    return _pair(certificate, key)


def certificate_builder(
    *,
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    now: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    """A certificate for `key`'s public key, valid from a little before `now`, with a random
    serial and a subject key identifier; callers add their extensions and sign."""
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        # Random serials: two replicas issuing at once never produce the same (issuer, serial).
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _authority_key_id(issuer: _Issuer) -> x509.AuthorityKeyIdentifier:
    # Clients pick the issuer by key identifier: both CAs of a rotation have the same name.
    try:
        ski = issuer.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    """Key usage with only the named bits (keyEncipherment never: EC keys do not wrap secrets)."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def common_name(name: str) -> x509.Name:
    """A subject of just a commonName: at most 64 characters, so a longer host is cut (clients
    match the SAN)."""
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64])])


def _general_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    if isinstance(hosts, str):  # a lone host would otherwise be read one character at a time
        raise TypeError("hosts must be a sequence of host names, not a string")
    if not hosts:
        raise ValueError("a serving certificate needs at least one host")
    return list(dict.fromkeys(_general_name(host) for host in hosts))


def _general_name(host: str) -> x509.GeneralName:
    # Hosts that parse as addresses go in as IP SANs: a client calling by IP matches only those.
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host.lower())  # DNS names compare case-insensitively


# --- deciding --------------------------------------------------------------------------------


def _due(certificate: x509.Certificate, now: datetime) -> bool:
    """Whether `certificate` must be replaced: not valid yet, expired, or in its last third."""
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    # The last third leaves time for failed renewals to be retried before anything expires.
    return now < start or end - now < (end - start) / 3


def _serving_fits(
    serving: KeyPair, authority: x509.Certificate, *, hosts: Sequence[str], now: datetime
) -> bool:
    certificate = _certificate(serving.certificate)
    return (
        not _due(certificate, now)
        and _covers(certificate, hosts)
        and _signed_by(certificate, authority)
    )


def _covers(certificate: x509.Certificate, hosts: Sequence[str]) -> bool:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    return set(_general_names(hosts)) <= set(san.value)


def _signed_by(certificate: x509.Certificate, authority: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(authority)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _pruned(bundle: bytes, authority: x509.Certificate, now: datetime) -> bytes:
    """`bundle` with the current CA first and expired CAs dropped; as it was if that is all."""
    certificates = x509.load_pem_x509_certificates(bundle)
    trusted = _trusted([authority, *certificates], now)
    return bundle if trusted == certificates else _pem(trusted)


def _trusted(certificates: Iterable[x509.Certificate], now: datetime) -> list[x509.Certificate]:
    unique = dict.fromkeys(certificates)
    return [certificate for certificate in unique if now < certificate.not_valid_after_utc]


# --- encoding --------------------------------------------------------------------------------


def _decoded(data: Mapping[str, str], name: str) -> bytes:
    if name not in data:
        raise InvalidMaterial(f"the Secret has no {name!r}")
    try:
        return base64.b64decode(data[name], validate=True)
    except (ValueError, TypeError) as error:
        raise InvalidMaterial(f"the Secret's {name!r} is not base64: {error}") from error


def _matching_pair(pems: Mapping[str, bytes], certificate_name: str, key_name: str) -> KeyPair:
    certificate = _parsed(certificate_name, pems[certificate_name], _certificate)
    key = _parsed(key_name, pems[key_name], _signing_key)
    if _spki(certificate) != _spki(key):
        raise InvalidMaterial(f"the Secret's {key_name!r} is not the key of {certificate_name!r}")
    return KeyPair(certificate=pems[certificate_name], key=pems[key_name])


def _parsed(name: str, pem: bytes, load: Callable[[bytes], _T]) -> _T:
    try:
        return load(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise InvalidMaterial(f"the Secret's {name!r} is not usable PEM: {error}") from error


def _spki(holder: x509.Certificate | _SigningKey) -> bytes:
    return holder.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificates(pem)[0]


def _signing_key(pem: bytes) -> _SigningKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TypeError(f"a {type(key).__name__} cannot sign certificates here; use EC or RSA")
    return key


def _issuer(authority: KeyPair) -> _Issuer:
    return _Issuer(_certificate(authority.certificate), _signing_key(authority.key))


def _pair(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> KeyPair:
    return KeyPair(
        certificate=certificate.public_bytes(serialization.Encoding.PEM), key=private_pem(key)
    )


def private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8, unencrypted: what TLS servers and Kubernetes components load."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem(certificates: Iterable[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def _utc(now: datetime) -> datetime:
    # A naive `now` would silently be read as local time by some and as UTC by others.
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)
