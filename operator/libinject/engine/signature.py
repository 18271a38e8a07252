"""The signature the webhook writes into a CSI volume's attributes, and the CSI plugin checks.

The plugin serves only volumes our webhook wrote: any pod in any namespace may name the driver,
so the volume carries an HMAC-SHA256, under a key only the operator and the plugin hold, over
what decides what is served and to whom: the pod's namespace (the plugin compares it with the
namespace the kubelet passes, which a pod cannot choose), the image and the language. A
signature copied from an injected pod is good only for the same library in the same namespace,
which our webhook would have given that namespace anyway. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json

ATTRIBUTE = "signature"  # the volume attribute that holds it
VERSION = "v1"  # the first field of the signed message: a later layout never verifies as this
KEY_BYTES = 32  # what the operator generates (the HMAC-SHA256 block is 64; 32 is its strength)
SECRET_DATA_KEY = "key"  # where the key's Secret holds it (the operator writes, the plugin reads)


def sign(key: bytes, *, namespace: str, image: str, language: str) -> str:
    """`v1.<hex HMAC-SHA256>` over the three fields, encoded without ambiguity (a JSON list)."""
    message = json.dumps([VERSION, namespace, image, language], separators=(",", ":"))
    digest = hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
    return f"{VERSION}.{digest}"


def verify(key: bytes, signature: str, *, namespace: str, image: str, language: str) -> bool:
    """Whether `signature` is ours for these fields (compared in constant time)."""
    if not key:
        return False
    expected = sign(key, namespace=namespace, image=image, language=language)
    return hmac.compare_digest(expected.encode(), signature.encode(errors="replace"))
