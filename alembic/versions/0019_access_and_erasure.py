"""who may act and erasure: inbox Slack user group; the timeline erase function

Revision ID: 0019
Revises: 0018

The ticket timeline stays append-only for everyone: the trigger now lets exactly one role delete,
`threadline_eraser`, a NOLOGIN role nobody is a member of. It owns one SECURITY DEFINER function,
`threadline_erase_tickets(uuid[])`, which deletes whole tickets (their timeline first, then the
ticket and everything that cascades from it). RLS still applies inside it (the role has no
BYPASSRLS), so it only reaches the tenant of the calling transaction. Nothing else can remove a
timeline row of a ticket that still exists.
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op
from core.db.session import APP_ROLE

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

ERASER = "threadline_eraser"


def upgrade() -> None:
    op.add_column("inboxes", sa.Column("slack_user_group_id", sa.String(length=64), nullable=True))
    op.execute(f"""DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ERASER}') THEN
        CREATE ROLE {ERASER} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
      END IF;
    END $$""")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {ERASER}")
    op.execute(f"GRANT SELECT, DELETE ON ticket_events, tickets TO {ERASER}")
    op.execute(f"""CREATE OR REPLACE FUNCTION threadline_refuse_change() RETURNS trigger
       LANGUAGE plpgsql AS $$ BEGIN
         -- The one exception: the erase function (owned by {ERASER}) deleting a whole ticket.
         IF TG_OP = 'DELETE' AND current_user = '{ERASER}' THEN RETURN OLD; END IF;
         RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
       END $$""")
    op.execute("""CREATE OR REPLACE FUNCTION threadline_erase_tickets(p_ticket_ids uuid[]) RETURNS integer
       LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
       DECLARE n integer;
       BEGIN
         IF NULLIF(current_setting('app.tenant_id', true), '') IS NULL THEN
           RAISE EXCEPTION 'threadline_erase_tickets runs in a tenant transaction only'
             USING ERRCODE = 'insufficient_privilege';
         END IF;
         DELETE FROM ticket_events WHERE ticket_id = ANY(p_ticket_ids);
         DELETE FROM tickets WHERE id = ANY(p_ticket_ids);
         GET DIAGNOSTICS n = ROW_COUNT;
         RETURN n;
       END $$""")
    # ALTER ... OWNER needs membership of the new owner when the migrator is not a superuser.
    op.execute(f"GRANT {ERASER} TO CURRENT_USER")
    op.execute(f"ALTER FUNCTION threadline_erase_tickets(uuid[]) OWNER TO {ERASER}")
    op.execute(f"REVOKE {ERASER} FROM CURRENT_USER")
    op.execute("REVOKE ALL ON FUNCTION threadline_erase_tickets(uuid[]) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION threadline_erase_tickets(uuid[]) TO {APP_ROLE}")


def downgrade() -> None:
    op.execute(f"GRANT {ERASER} TO CURRENT_USER")
    op.execute("DROP FUNCTION IF EXISTS threadline_erase_tickets(uuid[])")
    op.execute(f"REVOKE {ERASER} FROM CURRENT_USER")
    op.execute("""CREATE OR REPLACE FUNCTION threadline_refuse_change() RETURNS trigger
       LANGUAGE plpgsql AS $$ BEGIN
         RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
       END $$""")
    op.execute(f"REVOKE ALL ON ticket_events, tickets FROM {ERASER}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {ERASER}")
    op.drop_column("inboxes", "slack_user_group_id")
