"""The webhook's certificates: the serving certificate really verifies against the bundle for
every host, renewal happens when (and only when) it must, a CA rotation never leaves a serving
certificate untrusted, and the Secret's data round-trips or is refused with the key at fault."""

from __future__ import annotations

import base64
import ipaddress
import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from libinject.runtime.pki import (
    DEFAULT_CA_LIFETIME,
    DEFAULT_SERVING_LIFETIME,
    InvalidMaterial,
    Material,
    expiry,
    from_secret_data,
    new_material,
    renew,
    to_secret_data,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SERVICE = "libinject-webhook.libinject-system.svc"
HOSTS = (SERVICE, f"{SERVICE}.cluster.local", "127.0.0.1")
MATERIAL = new_material(hosts=HOSTS, now=NOW)
OTHER = new_material(hosts=HOSTS, now=NOW)
SECRET_KEYS = ("tls.crt", "tls.key", "ca.crt", "authority.crt", "authority.key")


def days(n: int) -> datetime:
    return NOW + timedelta(days=n)


def verify(leaf: bytes, bundle: bytes, *, host: str, at: datetime) -> None:
    """Build and check the chain from `leaf` to a CA of `bundle` for `host`, as a client would."""
    subject: x509.DNSName | x509.IPAddress
    try:
        subject = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        subject = x509.DNSName(host)
    store = Store(x509.load_pem_x509_certificates(bundle))
    verifier = PolicyBuilder().store(store).time(at).build_server_verifier(subject)
    verifier.verify(x509.load_pem_x509_certificate(leaf), [])


def cas(bundle: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(bundle)


def ca(material: Material) -> x509.Certificate:
    return x509.load_pem_x509_certificate(material.authority.certificate)


def renewed(material: Material, *, now: datetime) -> Material:
    """`renew` for a step that must change something."""
    result = renew(material, hosts=HOSTS, now=now)
    assert result is not None
    return result


# The CA (3 years) is due at day 730 minus a little; the serving certificate (90 days) at day 60.
SERVED_BY_OLD_CA = renewed(MATERIAL, now=days(700))
ROTATED = renewed(SERVED_BY_OLD_CA, now=days(740))


# --- the serving certificate and its hosts ---------------------------------------------------


@pytest.mark.parametrize("host", HOSTS, ids=["service", "fqdn", "ip"])
def test_serving_certificate_verifies_against_the_bundle_for_each_host(host: str) -> None:
    verify(MATERIAL.serving.certificate, MATERIAL.bundle, host=host, at=NOW)


@pytest.mark.parametrize(
    "host",
    ["other.libinject-system.svc", "libinject-system.svc", "127.0.0.2", "::1"],
    ids=["other-service", "parent-domain", "other-ip", "ipv6-loopback"],
)
def test_serving_certificate_fails_verification_for_a_host_not_listed(host: str) -> None:
    with pytest.raises(VerificationError):
        verify(MATERIAL.serving.certificate, MATERIAL.bundle, host=host, at=NOW)


def test_serving_certificate_does_not_verify_against_another_ca() -> None:
    """The verification above proves something: a foreign bundle is refused."""
    with pytest.raises(VerificationError):
        verify(MATERIAL.serving.certificate, OTHER.bundle, host=SERVICE, at=NOW)


def test_serving_certificate_never_outlives_its_ca() -> None:
    material = new_material(
        hosts=HOSTS, now=NOW, ca_lifetime=timedelta(days=30), serving_lifetime=timedelta(days=90)
    )
    assert expiry(material.serving.certificate) == days(30)


@pytest.mark.parametrize(
    ("hosts", "error"),
    [((), ValueError), (SERVICE, TypeError)],
    ids=["no-host", "string-not-sequence"],
)
def test_new_material_refuses_bad_hosts(hosts: tuple[str, ...] | str, error: type) -> None:
    with pytest.raises(error):
        new_material(hosts=hosts, now=NOW)


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        new_material(hosts=HOSTS, now=datetime(2026, 1, 1))


# --- renewal of the serving certificate ------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "renewed"),
    [(0, False), (59, False), (60, True), (89, True), (91, True)],
    ids=["fresh", "just-before-last-third", "two-thirds", "last-day", "expired"],
)
def test_serving_certificate_is_renewed_in_its_last_third(day: int, renewed: bool) -> None:
    result = renew(MATERIAL, hosts=HOSTS, now=days(day))
    if not renewed:
        assert result is None
        return
    assert result is not None
    assert result.authority == MATERIAL.authority  # same CA, byte for byte
    assert result.bundle == MATERIAL.bundle
    assert result.serving.certificate != MATERIAL.serving.certificate
    assert expiry(result.serving.certificate) == days(day) + DEFAULT_SERVING_LIFETIME
    verify(result.serving.certificate, result.bundle, host=SERVICE, at=days(day))


@pytest.mark.parametrize(
    ("hosts", "renewed"),
    [
        ((*HOSTS, "libinject.example.com"), True),
        ((*HOSTS, "10.0.0.1"), True),
        (HOSTS[:1], False),
        (tuple(reversed(HOSTS)), False),
        (tuple(host.upper() for host in HOSTS), False),
    ],
    ids=["dns-host-added", "ip-added", "host-removed", "order-changed", "upper-case"],
)
def test_serving_certificate_is_renewed_when_a_host_is_not_covered(
    hosts: tuple[str, ...], renewed: bool
) -> None:
    result = renew(MATERIAL, hosts=hosts, now=days(1))
    if not renewed:
        assert result is None
        return
    assert result is not None
    assert result.authority == MATERIAL.authority
    for host in hosts:
        verify(result.serving.certificate, result.bundle, host=host, at=days(1))


def test_serving_certificate_from_another_ca_is_reissued_by_the_current_one() -> None:
    mixed = Material(authority=MATERIAL.authority, serving=OTHER.serving, bundle=MATERIAL.bundle)
    result = renewed(mixed, now=days(1))
    assert result.authority == MATERIAL.authority
    verify(result.serving.certificate, MATERIAL.bundle, host=SERVICE, at=days(1))


# --- rotation of the CA ----------------------------------------------------------------------


def test_ca_is_kept_until_its_last_third() -> None:
    assert SERVED_BY_OLD_CA.authority == MATERIAL.authority


def test_ca_near_expiry_is_rotated_and_both_cas_are_in_the_bundle() -> None:
    assert ROTATED.authority != MATERIAL.authority
    assert cas(ROTATED.bundle) == [ca(ROTATED), ca(MATERIAL)]  # the new CA first
    assert expiry(ROTATED.authority.certificate) == days(740) + DEFAULT_CA_LIFETIME


def test_serving_certificate_of_the_old_ca_still_verifies_after_rotation() -> None:
    """A replica still serving the old certificate is trusted while the new one rolls out."""
    verify(SERVED_BY_OLD_CA.serving.certificate, ROTATED.bundle, host=SERVICE, at=days(740))


def test_serving_certificate_of_the_new_ca_verifies_against_the_new_ca_alone() -> None:
    verify(ROTATED.serving.certificate, ROTATED.bundle, host=SERVICE, at=days(740))
    verify(ROTATED.serving.certificate, ROTATED.authority.certificate, host=SERVICE, at=days(740))


@pytest.mark.parametrize(
    ("day", "bundle_size"),
    [(1094, 2), (1096, 1)],
    ids=["old-ca-valid", "old-ca-expired"],
)
def test_the_old_ca_leaves_the_bundle_when_it_expires(day: int, bundle_size: int) -> None:
    """The old CA expires on day 1095; the serving certificate is fresh, so only the bundle moves."""
    fresh = renewed(ROTATED, now=days(1090))
    result = renew(fresh, hosts=HOSTS, now=days(day))
    if bundle_size == 2:
        assert result is None
        return
    assert result is not None
    assert result.serving == fresh.serving
    assert result.authority == fresh.authority
    assert cas(result.bundle) == [ca(fresh)]


def test_an_expired_ca_is_not_carried_into_the_bundle_on_rotation() -> None:
    result = renewed(MATERIAL, now=days(1100))
    assert cas(result.bundle) == [ca(result)]
    verify(result.serving.certificate, result.bundle, host=SERVICE, at=days(1100))


# --- expiry ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pem", "expected"),
    [
        (MATERIAL.serving.certificate, NOW + DEFAULT_SERVING_LIFETIME),
        (MATERIAL.authority.certificate, NOW + DEFAULT_CA_LIFETIME),
        (ROTATED.bundle, days(740) + DEFAULT_CA_LIFETIME),
    ],
    ids=["serving", "authority", "bundle-first-ca"],
)
def test_expiry_is_the_not_after_of_the_first_certificate(pem: bytes, expected: datetime) -> None:
    assert expiry(pem) == expected
    assert expiry(pem).utcoffset() == timedelta(0)


# --- the Secret ------------------------------------------------------------------------------


def test_secret_data_round_trips() -> None:
    data = to_secret_data(ROTATED)
    assert set(data) == set(SECRET_KEYS)
    assert base64.b64decode(data["ca.crt"]) == ROTATED.bundle
    assert base64.b64decode(data["tls.crt"]) == ROTATED.serving.certificate
    assert base64.b64decode(data["authority.key"]) == ROTATED.authority.key
    assert from_secret_data(data) == ROTATED


def _encoded(pem: bytes) -> str:
    return base64.b64encode(pem).decode("ascii")


GARBAGE = _encoded(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
BROKEN = [
    *[pytest.param(key, None, id=f"missing-{key}") for key in SECRET_KEYS],
    *[pytest.param(key, GARBAGE, id=f"garbage-{key}") for key in SECRET_KEYS],
    pytest.param("tls.crt", "not base64!", id="not-base64"),
    pytest.param("tls.key", _encoded(OTHER.serving.key), id="serving-key-mismatch"),
    pytest.param("authority.key", _encoded(OTHER.authority.key), id="authority-key-mismatch"),
    pytest.param("tls.key", _encoded(MATERIAL.serving.certificate), id="certificate-as-key"),
]


@pytest.mark.parametrize(("key", "value"), BROKEN)
def test_broken_secret_data_is_refused_naming_the_key(key: str, value: str | None) -> None:
    data = to_secret_data(MATERIAL)
    if value is None:
        del data[key]
    else:
        data[key] = value
    with pytest.raises(InvalidMaterial, match=re.escape(repr(key))):
        from_secret_data(data)


def test_invalid_material_is_a_value_error() -> None:
    assert issubclass(InvalidMaterial, ValueError)
