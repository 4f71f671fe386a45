"""team contacts: owner and source of a contact, keyset indexes, static lists, exports

Existing contacts get their creator as owner; their source defaults to `cli` (it was not recorded).

Revision ID: 0013_team_contacts
Revises: 0012_api
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013_team_contacts"
down_revision: str | None = "0012_api"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("team_contact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner_member_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default="cli")
        )
        batch_op.create_foreign_key("fk_team_contact_owner_member", "member", ["owner_member_id"], ["id"])
        batch_op.create_index("ix_team_contact_team_saved", ["team_id", "created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_team_contact_team_owner_saved", ["team_id", "owner_member_id", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_team_contact_team_source_saved", ["team_id", "source", "created_at", "id"], unique=False
        )
    op.execute("UPDATE team_contact SET owner_member_id = created_by_member_id")

    op.create_table(
        "contact_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_by_member_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS(), nullable=False),
        sa.ForeignKeyConstraint(["created_by_member_id"], ["member.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "name", name="uq_contact_list_team_name"),
    )
    op.create_table(
        "contact_list_entry",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("added_at", _TS(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["team_contact.id"]),
        sa.ForeignKeyConstraint(["list_id"], ["contact_list.id"]),
        sa.PrimaryKeyConstraint("list_id", "contact_id"),
    )
    op.create_index("ix_contact_list_entry_contact", "contact_list_entry", ["contact_id"], unique=False)
    op.create_table(
        "contact_export",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("feature", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("contacts", sa.Integer(), nullable=False),
        sa.Column("net_new", sa.Integer(), nullable=False),
        sa.Column("credits_charged", sa.Integer(), nullable=False),
        sa.Column("charge_transfer_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_contact_export_team_created", "contact_export", ["team_id", "created_at"], unique=False)
    op.create_table(
        "contact_export_item",
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["team_contact.id"]),
        sa.ForeignKeyConstraint(["export_id"], ["contact_export.id"]),
        sa.PrimaryKeyConstraint("export_id", "contact_id"),
    )
    op.create_table(
        "exported_person",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("exported_at", _TS(), nullable=False),
        sa.ForeignKeyConstraint(["export_id"], ["contact_export.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["team.id"]),
        sa.PrimaryKeyConstraint("team_id", "person_id"),
    )


def downgrade() -> None:
    op.drop_table("exported_person")
    op.drop_table("contact_export_item")
    op.drop_index("ix_contact_export_team_created", table_name="contact_export")
    op.drop_table("contact_export")
    op.drop_index("ix_contact_list_entry_contact", table_name="contact_list_entry")
    op.drop_table("contact_list_entry")
    op.drop_table("contact_list")
    with op.batch_alter_table("team_contact", schema=None) as batch_op:
        batch_op.drop_index("ix_team_contact_team_source_saved")
        batch_op.drop_index("ix_team_contact_team_owner_saved")
        batch_op.drop_index("ix_team_contact_team_saved")
        batch_op.drop_constraint("fk_team_contact_owner_member", type_="foreignkey")
        batch_op.drop_column("source")
        batch_op.drop_column("owner_member_id")
