"""Durable state in SQL: build records, the build queue, build logs, signing keys."""
