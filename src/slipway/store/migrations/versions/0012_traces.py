"""build traces (docs/traces.md): slipway_build_traces, the spans kept with each build.

Not in Quay's database (Quay mode keeps traces in memory and exports them over OTLP): a
database with Quay's `queueitem` table gets no table here.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def _is_quays() -> bool:
    return sa.inspect(op.get_bind()).has_table('queueitem')


def upgrade() -> None:
    if _is_quays():
        return
    op.create_table(
        'slipway_build_traces',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('build_id', sa.String(36), nullable=False),
        sa.Column('spans', sa.JSON(), nullable=False),
        sa.Column('created', sa.Float(), nullable=False),
    )
    op.create_index('ix_slipway_build_traces_build_id', 'slipway_build_traces', ['build_id'])


def downgrade() -> None:
    if sa.inspect(op.get_bind()).has_table('slipway_build_traces'):
        op.drop_index('ix_slipway_build_traces_build_id', 'slipway_build_traces')
        op.drop_table('slipway_build_traces')
