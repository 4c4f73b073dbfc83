"""SQLite: refuse an audit INSERT that reuses an existing id (`INSERT OR REPLACE` rewrote an
entry without firing the DELETE trigger). Only adds a trigger: altering the audit table on
SQLite rebuilds it and drops every trigger (see apps/accounts/audit.py). PostgreSQL: nothing
to do, its `INSERT ... ON CONFLICT DO UPDATE` already meets the UPDATE trigger.
"""

from typing import Any

from django.db import migrations


def create_trigger(apps: Any, schema_editor: Any) -> None:
    from apps.accounts.audit import no_replace_sql

    for statement in no_replace_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def drop_trigger(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS accounts_auditentry_no_replace", params=None)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_merge_audit_keys")]

    operations = [migrations.RunPython(create_trigger, drop_trigger)]
