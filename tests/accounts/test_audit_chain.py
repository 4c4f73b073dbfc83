"""The audit log is append-only in the database and hash-chained; `verifyaudit` finds tampering."""

from __future__ import annotations

import threading
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from apps.accounts import audit
from apps.accounts.actor import SYSTEM
from apps.accounts.models import AuditEntry, Tenant

pytestmark = pytest.mark.django_db


def _entry(action: str = "volume.created", target: str = "data", **data: Any) -> AuditEntry:
    return audit.record(SYSTEM, action, target_type="volume", target_id=target, data=data)


def _verify() -> str:
    out = StringIO()
    call_command("verifyaudit", stdout=out)
    return out.getvalue()


def test_it_refuses_update_and_delete_through_the_orm() -> None:
    entry = _entry(size=1)
    attempts = [
        lambda: AuditEntry.objects.filter(pk=entry.pk).update(action="volume.deleted"),
        lambda: AuditEntry.objects.filter(pk=entry.pk).delete(),
        lambda: AuditEntry.objects.all().delete(),
        lambda: entry.delete(),
    ]
    entry.target_name = "renamed"
    attempts.append(lambda: entry.save())
    for attempt in attempts:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    fresh = AuditEntry.objects.get(pk=entry.pk)
    assert (fresh.action, fresh.target_name, fresh.data) == ("volume.created", "", {"size": 1})


def test_it_refuses_raw_sql_updates_too() -> None:
    entry = _entry()
    statements = [
        ("UPDATE accounts_auditentry SET actor_name = 'mallory'", []),
        ("DELETE FROM accounts_auditentry WHERE id = %s", [entry.pk]),
    ]
    for sql, params in statements:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, params)
    assert AuditEntry.objects.filter(pk=entry.pk, actor_name="system").exists()


def test_it_chains_each_entry_to_the_one_before() -> None:
    first, second, third = _entry(n=1), _entry(n=2), _entry(n=3)
    assert first.prev_hash == audit.GENESIS
    assert second.prev_hash == first.entry_hash and third.prev_hash == second.entry_hash
    assert len({first.entry_hash, second.entry_hash, third.entry_hash}) == 3
    assert f"3 entries, head {third.entry_hash}" in _verify()


def test_it_hashes_awkward_data_as_the_database_gives_it_back() -> None:
    awkward = {"argv": ["a\x00b", "\ud800"], "big": 1e20, "whole": 2.0, "odd": float("nan")}
    entry = _entry(target="t\x00", **awkward)
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.data == {"argv": ["a\ufffdb", "?"], "big": 10**20, "whole": 2, "odd": "nan"}
    assert stored.target_id == "t\ufffd"
    assert "1 entries" in _verify()


def test_it_names_the_first_edited_entry() -> None:
    entries = [_entry(n=i) for i in range(4)]
    # Bypass the triggers the only way there is, then change one entry's data.
    with audit.unlocked(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_auditentry SET target_id = 'other' WHERE id = %s", [entries[2].pk]
        )
    with pytest.raises(CommandError, match=rf"entry #{entries[2].pk}: its fields do not match"):
        _verify()


def test_it_names_the_entry_after_a_removed_one() -> None:
    entries = [_entry(n=i) for i in range(4)]
    with audit.unlocked():
        AuditEntry.objects.filter(pk=entries[1].pk).delete()
    with pytest.raises(CommandError) as err:
        _verify()
    assert f"entry #{entries[2].pk}" in str(err.value)
    assert f"does not match entry #{entries[0].pk}" in str(err.value)
    assert "missing" in str(err.value)


def test_it_notices_a_rewritten_entry_whose_hash_was_recomputed() -> None:
    entries = [_entry(n=i) for i in range(3)]
    forged = {**AuditEntry.objects.values(*audit.HASHED_FIELDS).get(pk=entries[1].pk)}
    forged["target_id"] = "forged"
    new_hash = audit.entry_hash(forged, entries[1].prev_hash)
    with audit.unlocked():
        AuditEntry.objects.filter(pk=entries[1].pk).update(target_id="forged", entry_hash=new_hash)
    with pytest.raises(CommandError, match=rf"entry #{entries[2].pk}: its prev_hash"):
        _verify()


def test_it_reports_missing_triggers() -> None:
    _entry()
    assert audit.guard_installed()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER accounts_auditentry_no_update")
        else:
            cursor.execute("DROP TRIGGER accounts_auditentry_no_change ON accounts_auditentry")
    with pytest.raises(CommandError, match="triggers are missing"):
        _verify()


def test_it_keeps_audit_rows_when_a_tenant_is_deleted(admin: Any) -> None:
    gone = Tenant.objects.create(slug="gone", name="Gone")
    entry = audit.record(
        SYSTEM, "tenant.created", target_type="tenant", target_id="gone", tenant_id=gone.pk
    )
    gone.delete()
    kept = AuditEntry.objects.select_related("tenant").get(pk=entry.pk)
    assert kept.tenant_id == entry.tenant_id and kept.tenant is None
    assert "1 entries" in _verify()
    page = admin.client.get("/activity/")
    assert page.status_code == 200 and "tenant.created" in page.content.decode()


def test_it_keeps_the_actor_name_when_a_user_is_deleted(operator: Any) -> None:
    from apps.accounts.actor import actor_for

    class _Req:
        user = operator.user

    audit.record(actor_for(_Req()), "volume.created", target_type="volume", target_id="v")
    operator.user.delete()
    assert AuditEntry.objects.get(target_id="v").actor_name == "oscar-operator"
    _verify()


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_chain_whole_under_concurrent_writers() -> None:
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(8):
                _entry(target=f"w{worker}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert "32 entries" in _verify()


def _rewrite_sql(verb: str, entry_id: int) -> str:
    """`<verb> INTO accounts_auditentry (...) SELECT ...` copying entry `entry_id` with a new
    actor name: the same id, so a REPLACE would delete the entry and insert the forgery."""
    columns = [f.column for f in AuditEntry._meta.concrete_fields]
    values = ["'mallory'" if c == "actor_name" else c for c in columns]
    return (
        f"{verb} INTO accounts_auditentry ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM accounts_auditentry WHERE id = {int(entry_id)}"
    )


@pytest.mark.skipif(connection.vendor != "sqlite", reason="REPLACE is SQLite's")
def test_it_refuses_insert_or_replace_of_an_existing_entry() -> None:
    entry = _entry()
    with connection.cursor() as cursor:
        # Django connections also turn recursive_triggers on (settings); a raw sqlite3 client
        # does not, and the trigger must hold there too.
        cursor.execute("PRAGMA recursive_triggers = OFF")
        try:
            for verb in ("INSERT OR REPLACE", "REPLACE"):
                with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
                    cursor.execute(_rewrite_sql(verb, entry.pk))
        finally:
            cursor.execute("PRAGMA recursive_triggers = ON")
    assert AuditEntry.objects.get(pk=entry.pk).actor_name == entry.actor_name
    assert "intact" in _verify()


def test_it_refuses_an_upsert_of_an_existing_entry() -> None:
    # PostgreSQL's ON CONFLICT DO UPDATE is an UPDATE and meets the UPDATE trigger; SQLite's
    # is refused by the INSERT trigger first.
    entry = _entry()
    sql = _rewrite_sql("INSERT", entry.pk)
    sql += " ON CONFLICT (id) DO UPDATE SET actor_name = 'mallory'"
    # (The SELECT's WHERE clause also settles SQLite's upsert parsing ambiguity.)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert AuditEntry.objects.get(pk=entry.pk).actor_name == entry.actor_name


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the trigger is SQLite's")
def test_it_reports_a_missing_no_replace_trigger() -> None:
    _entry()
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER accounts_auditentry_no_replace")
    with pytest.raises(CommandError, match="triggers are missing"):
        _verify()
