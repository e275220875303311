"""hex_generator package."""
