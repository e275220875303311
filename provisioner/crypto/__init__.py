"""Cryptographic core: DRBG key streams, sealed files, envelopes, signatures, PINs."""
