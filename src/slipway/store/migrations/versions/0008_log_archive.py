"""log archive and retention (store/log_archiving.py, store/retention.py)

- slipway_builds.log_archived_at: when the build's log moved to the log archive (null:
  its entries are still rows of slipway_build_logs).
- slipway_builds (completed) WHERE the log is not archived: the archiver's pick-up of
  ended builds.
- slipway_builds (resource_key): the builds of one uploaded context (its clean-up).
(SQLite's switch to auto_vacuum=INCREMENTAL needs a VACUUM outside any transaction, so it
is not a step of this revision: store/sqlite_space.py does it once when the store opens.)

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

UNARCHIVED = "log_archived_at IS NULL AND completed IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table('slipway_builds') as batch:
        batch.add_column(sa.Column('log_archived_at', sa.Float(), nullable=True))
        batch.create_index('ix_builds_resource_key', ['resource_key'])
    op.create_index('ix_builds_log_unarchived', 'slipway_builds', ['completed'],
                    sqlite_where=sa.text(UNARCHIVED), postgresql_where=sa.text(UNARCHIVED))


def downgrade() -> None:
    op.drop_index('ix_builds_log_unarchived', 'slipway_builds')
    with op.batch_alter_table('slipway_builds') as batch:
        batch.drop_index('ix_builds_resource_key')
        batch.drop_column('log_archived_at')
