"""The reference field-update device: a model of the bootloader of docs/updates-protocol.md §7."""
