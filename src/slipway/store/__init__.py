"""Durable state: its interfaces (interfaces.py, records.py) and slipway's SQL tables behind
them (facade.py SqlStore): build records, queue, logs, API tokens, uploads, signing keys."""
