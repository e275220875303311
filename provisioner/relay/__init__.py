"""The technician relay: carries a device's signed request to the site and the sealed package
back. It holds no key and sees no plaintext (import-linter keeps crypto out of it)."""
