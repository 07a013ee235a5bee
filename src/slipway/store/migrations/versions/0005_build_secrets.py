"""build secrets: one encrypted row per build, deleted when the build ends

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'slipway_build_secrets',
        sa.Column('build_id', sa.String(length=36), nullable=False),
        sa.Column('sealed', sa.Text(), nullable=False),
        sa.Column('created', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['build_id'], ['slipway_builds.id']),
        sa.PrimaryKeyConstraint('build_id'),
    )


def downgrade() -> None:
    op.drop_table('slipway_build_secrets')
