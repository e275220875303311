"""PKCS#11 tokens (python-pkcs11): module loading, logged-in session pools, key objects, PINs."""
