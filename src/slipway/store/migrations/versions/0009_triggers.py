"""build triggers (docs/triggers.md): a git repository bound to an image repository, its
webhook deliveries, the commit statuses its builds post

- slipway_triggers: one row per trigger; `sealed` holds its webhook secret and clone and
  status credentials, Fernet-encrypted with BUILD_SECRETS_KEY (store/triggers.py);
  `next_run` the next scheduled rebuild, claimed by one manager (compare-and-set).
- slipway_trigger_deliveries: what each webhook delivery did; (trigger_id, delivery_key)
  unique, so a repeated delivery is not built twice.
- slipway_commit_statuses: the last commit state posted for a build (triggers/status.py).

Quay's database (Quay mode) does not get these tables: Quay's own triggers start its
builds there (store/database_kind.py STANDALONE_TABLES).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

from slipway.store.database_kind import QUAY_MARKER_TABLES


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def _quays_database() -> bool:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    return QUAY_MARKER_TABLES <= tables


def upgrade() -> None:
    if _quays_database():
        return
    op.create_table(
        'slipway_triggers',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('namespace', sa.String(length=255), nullable=False),
        sa.Column('repository', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('git_url', sa.Text(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('spec', sa.JSON(), nullable=False),
        sa.Column('sealed', sa.Text(), nullable=False),
        sa.Column('created', sa.Float(), nullable=False),
        sa.Column('updated', sa.Float(), nullable=False),
        sa.Column('next_run', sa.Float(), nullable=True),
        sa.Column('base_digests', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('namespace', 'repository', 'name', name='uq_triggers_name'),
    )
    op.create_index('ix_triggers_next_run', 'slipway_triggers', ['next_run'])
    op.create_table(
        'slipway_trigger_deliveries',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('trigger_id', sa.String(length=36), nullable=False),
        sa.Column('delivery_key', sa.String(length=255), nullable=True),
        sa.Column('event', sa.String(length=64), nullable=False),
        sa.Column('received', sa.Float(), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('ref', sa.Text(), nullable=True),
        sa.Column('commit_sha', sa.String(length=64), nullable=True),
        sa.Column('build_id', sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(['trigger_id'], ['slipway_triggers.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('trigger_id', 'delivery_key', name='uq_deliveries_key'),
    )
    op.create_index('ix_deliveries_trigger', 'slipway_trigger_deliveries',
                    ['trigger_id', 'received'])
    op.create_table(
        'slipway_commit_statuses',
        sa.Column('build_id', sa.String(length=36), nullable=False),
        sa.Column('trigger_id', sa.String(length=36), nullable=False),
        sa.Column('posted', sa.String(length=16), nullable=True),
        sa.Column('wanted', sa.String(length=16), nullable=False),
        sa.Column('tries', sa.Integer(), nullable=False),
        sa.Column('due', sa.Float(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('build_id'),
    )
    op.create_index('ix_commit_statuses_due', 'slipway_commit_statuses', ['due'])


def downgrade() -> None:
    if _quays_database():
        return
    op.drop_index('ix_commit_statuses_due', 'slipway_commit_statuses')
    op.drop_table('slipway_commit_statuses')
    op.drop_index('ix_deliveries_trigger', 'slipway_trigger_deliveries')
    op.drop_table('slipway_trigger_deliveries')
    op.drop_index('ix_triggers_next_run', 'slipway_triggers')
    op.drop_table('slipway_triggers')
