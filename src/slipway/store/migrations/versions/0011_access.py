"""access for a team (docs/access.md): managed API tokens and the audit log

- slipway_api_tokens: id (listed and revoked by it), created_by, creator_id, expires, revoked,
  last_used; every existing token gets an id.
- slipway_audit_log: who did what, from where.

Revision ID: 0011
Revises: 0010
"""
import uuid

import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('slipway_api_tokens') as batch:
        batch.add_column(sa.Column('id', sa.String(length=36), nullable=True))
        batch.add_column(sa.Column('created_by', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('creator_id', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('expires', sa.Float(), nullable=True))
        batch.add_column(sa.Column('revoked', sa.Float(), nullable=True))
        batch.add_column(sa.Column('last_used', sa.Float(), nullable=True))
    tokens = sa.table('slipway_api_tokens', sa.column('token_hash', sa.String),
                      sa.column('id', sa.String))
    conn = op.get_bind()
    for (token_hash,) in conn.execute(sa.select(tokens.c.token_hash)).all():
        conn.execute(tokens.update().where(tokens.c.token_hash == token_hash)
                     .values(id=str(uuid.uuid4())))
    with op.batch_alter_table('slipway_api_tokens') as batch:
        batch.create_unique_constraint('uq_api_tokens_id', ['id'])
    op.create_table(
        'slipway_audit_log',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sa.Column('actor', sa.String(length=255), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('namespace', sa.String(length=255), nullable=True),
        sa.Column('target', sa.String(length=255), nullable=True),
        sa.Column('source', sa.String(length=255), nullable=True),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_at', 'slipway_audit_log', ['at'])
    op.create_index('ix_audit_namespace_at', 'slipway_audit_log', ['namespace', 'at'])


def downgrade() -> None:
    op.drop_index('ix_audit_namespace_at', 'slipway_audit_log')
    op.drop_index('ix_audit_at', 'slipway_audit_log')
    op.drop_table('slipway_audit_log')
    with op.batch_alter_table('slipway_api_tokens') as batch:
        batch.drop_constraint('uq_api_tokens_id', type_='unique')
        for column in ('last_used', 'revoked', 'expires', 'creator_id', 'created_by', 'id'):
            batch.drop_column(column)
