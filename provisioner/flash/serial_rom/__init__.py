"""serial_rom package."""
