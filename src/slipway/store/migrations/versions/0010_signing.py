"""build attestations (docs/signing.md)

- slipway_build_attestations: per build, what its worker signed and attached (the signed
  digests, the provenance's DSSE envelopes, the SBOM), as JSON.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'slipway_build_attestations',
        sa.Column('build_id', sa.String(length=36), sa.ForeignKey('slipway_builds.id'),
                  primary_key=True),
        sa.Column('document', sa.Text(), nullable=False),
        sa.Column('created', sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('slipway_build_attestations')
