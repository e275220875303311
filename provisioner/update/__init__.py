"""The field-update protocol (docs/updates-protocol.md): byte layouts, key derivation, packages.

Pure core shared by the site, the reference device model and the technician relay.
"""
