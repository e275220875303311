"""Alembic migrations of the site database (shipped as package data)."""
