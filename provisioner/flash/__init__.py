"""flash package."""
