"""Sign an X.509 certificate with a key that ``cryptography`` cannot hold (one on a token).

``cryptography``'s ``CertificateBuilder.sign`` needs its own private-key objects, so the
certificate is built and signed once with a throw-away P-256 key; its TBSCertificate (which
already names the real issuer, the real AKI and ecdsa-with-SHA256) is then signed by the
token, and asn1crypto reassembles Certificate ::= SEQUENCE {tbs, algorithm, signature}
(RFC 5280 §4.1). The result is checked against the issuer's public key before it is returned.
"""

from __future__ import annotations

from collections.abc import Callable

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provisioner.errors import CryptoError


def sign_externally(
    builder: x509.CertificateBuilder, issuer_key: ec.EllipticCurvePublicKey,
    sign_der: Callable[[bytes], bytes],
) -> x509.Certificate:
    """Return ``builder`` signed by ``sign_der`` (TBS bytes → DER ECDSA-Sig-Value, SHA-256).

    Raises:
        CryptoError: the signature does not verify under ``issuer_key``.
    """
    draft = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    tbs = draft.tbs_certificate_bytes
    signature = sign_der(tbs)
    parsed = asn1_x509.Certificate.load(draft.public_bytes(serialization.Encoding.DER))
    final = asn1_x509.Certificate({
        "tbs_certificate": parsed["tbs_certificate"],
        "signature_algorithm": parsed["signature_algorithm"],
        "signature_value": signature,
    })
    cert = x509.load_der_x509_certificate(final.dump(force=True))
    try:
        issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise CryptoError("the token's certificate signature does not verify") from exc
    return cert
