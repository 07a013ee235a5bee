"""queue TTL: slipway_build_queue.start_by and its index

- slipway_build_queue.start_by (nullable float): when a build still waiting for its first
  attempt expires (QUEUE_TTL); cleared by that attempt's claim. Existing items get none.
- ix_queue_start_by: the managers' expiry look reads a range of it, nothing when no build
  is due.

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('slipway_build_queue') as batch:
        batch.add_column(sa.Column('start_by', sa.Float(), nullable=True))
        batch.create_index('ix_queue_start_by', ['start_by'])


def downgrade() -> None:
    with op.batch_alter_table('slipway_build_queue') as batch:
        batch.drop_index('ix_queue_start_by')
        batch.drop_column('start_by')
