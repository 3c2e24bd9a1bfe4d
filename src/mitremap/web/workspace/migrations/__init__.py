"""Alembic migrations of the workspace schema (run at start-up by `Database.upgrade`)."""
