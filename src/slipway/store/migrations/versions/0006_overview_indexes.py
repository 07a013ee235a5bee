"""overview indexes: the web UI's reads across many builds (store/overview.py)

- slipway_builds (namespace, repository, started, phase) replaces (namespace, repository,
  started): the repositories listing groups by repository and counts the builds still
  going from the index alone, without reading the wide build rows; every read of the
  old index is served by its prefix.
- slipway_builds (phase, executor): workers running per executor, and the builds still
  going among the recent failures.
- slipway_builds (completed): builds that ended since a time (recent failures).
- slipway_build_queue (namespace): queue depth per namespace. Only the namespace, so
  that a lease's renewal (processing_expires) still updates no index.

Revision ID: 0006
Revises: 0005
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('slipway_builds') as batch:
        batch.create_index('ix_builds_repo_started_phase',
                           ['namespace', 'repository', 'started', 'phase'])
        batch.drop_index('ix_builds_repo_started')
        batch.create_index('ix_builds_phase_executor', ['phase', 'executor'])
        batch.create_index('ix_builds_completed', ['completed'])
    with op.batch_alter_table('slipway_build_queue') as batch:
        batch.create_index('ix_queue_namespace', ['namespace'])


def downgrade() -> None:
    with op.batch_alter_table('slipway_build_queue') as batch:
        batch.drop_index('ix_queue_namespace')
    with op.batch_alter_table('slipway_builds') as batch:
        batch.drop_index('ix_builds_completed')
        batch.drop_index('ix_builds_phase_executor')
        batch.create_index('ix_builds_repo_started', ['namespace', 'repository', 'started'])
        batch.drop_index('ix_builds_repo_started_phase')
