"""slipway_ table names

Every table of slipway is renamed to a `slipway_` name, so that slipway's tables can
live in Quay's database beside Quay's own. Data are kept: the tables are renamed, not
copied. (The version table moves from alembic_version to slipway_alembic_version in
env.py, before Alembic reads it.) Index and constraint names are left as they were.

Revision ID: 0003
Revises: 0001
Create Date: 2026-12-02 10:00:00.000000
"""
from alembic import op


revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None

# the referenced table first on the way up, last on the way down
RENAMES = [
    ('builds', 'slipway_builds'),
    ('build_queue', 'slipway_build_queue'),
    ('build_logs', 'slipway_build_logs'),
    ('signing_keys', 'slipway_signing_keys'),
    ('uploads', 'slipway_uploads'),
    ('api_tokens', 'slipway_api_tokens'),
]


def upgrade() -> None:
    for old, new in RENAMES:
        op.rename_table(old, new)


def downgrade() -> None:
    for old, new in reversed(RENAMES):
        op.rename_table(new, old)
