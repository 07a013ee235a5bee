"""build options: one JSON column for the options a build is run with

{"no_cache": bool, "pull": bool, "labels": {name: value}}; more options go in the same
column, so adding one needs no migration.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('slipway_builds', sa.Column('options', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('slipway_builds') as batch:
        batch.drop_column('options')
