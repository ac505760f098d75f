"""Alembic revisions of the store schema, named and numbered in order (0001, 0002, …)."""
