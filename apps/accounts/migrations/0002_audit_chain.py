"""The audit log becomes a hash chain, append-only in the database (apps/accounts/audit.py).

Existing entries are chained in id order, then the guard table and the triggers are created
(per vendor: SQLite and PostgreSQL). The tenant link loses its database constraint so deleting
a tenant leaves audit rows alone.
"""

from typing import Any

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


def chain_existing(apps: Any, schema_editor: Any) -> None:
    from apps.accounts.audit import GENESIS, HASHED_FIELDS, entry_hash

    entry = apps.get_model("accounts", "AuditEntry")
    db = schema_editor.connection.alias
    prev = GENESIS
    rows = entry.objects.using(db).order_by("id").values("id", *HASHED_FIELDS)
    for row in rows.iterator(chunk_size=2000):
        digest = entry_hash(row, prev)
        entry.objects.using(db).filter(pk=row["id"]).update(prev_hash=prev, entry_hash=digest)
        prev = digest


def create_guard(apps: Any, schema_editor: Any) -> None:
    from apps.accounts.audit import create_guard_sql

    for statement in create_guard_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def drop_guard(apps: Any, schema_editor: Any) -> None:
    from apps.accounts.audit import drop_guard_sql

    for statement in drop_guard_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditentry",
            name="client_ip",
            field=models.CharField(blank=True, max_length=45),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="entry_hash",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="prev_hash",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="request_id",
            field=models.CharField(blank=True, max_length=128),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="role",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="at",
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now),
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="tenant",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="accounts.tenant",
            ),
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop),
        migrations.RunPython(create_guard, drop_guard),
    ]
