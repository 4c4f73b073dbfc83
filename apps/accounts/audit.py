"""The audit log's one writer, its hash chain and its append-only guard.

Actions call `record()`; nothing else writes AuditEntry rows. Each entry stores `prev_hash` (the
previous entry's `entry_hash`, or GENESIS) and `entry_hash` = sha256 over a canonical JSON form of
its fields and `prev_hash`, so an edited, inserted or removed entry breaks the chain at that point
(`manage.py verifyaudit`). Appends are serialised: on SQLite every write transaction is
IMMEDIATE, which already admits one writer at a time; on PostgreSQL a transaction-level advisory
lock is held from reading the chain's head until the commit.

The table is append-only in the database: triggers refuse UPDATE, DELETE (and on PostgreSQL
TRUNCATE; on SQLite an INSERT reusing an existing id, which `INSERT OR REPLACE` would otherwise
turn into a silent delete, since SQLite fires no DELETE trigger for a REPLACE unless
recursive_triggers is on; PostgreSQL's `INSERT ... ON CONFLICT DO UPDATE` is an UPDATE and
meets the UPDATE trigger) unless the one row of `accounts_auditguard` says `unlocked = 1`. Only `unlocked()`
sets it, and it sets and resets it inside one transaction, so no other connection ever sees the
guard lifted; its one user is the test suite's table flush (tests/conftest.py). Whoever can
write that table or drop triggers by hand can change the log; the chain is what then shows it.
The chain alone cannot show that the newest entries were cut off: keep the head that
`verifyaudit` prints somewhere else if that matters.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from apps.accounts.actor import Actor
from apps.accounts.models import AuditEntry
from apps.core.database import until_written

GENESIS = "0" * 64
# The fields an entry's hash covers, besides prev_hash; `id` is not one of them (PostgreSQL
# sequences leave gaps), the chain's order is.
HASHED_FIELDS = (
    "tenant_id",
    "actor_kind",
    "actor_id",
    "actor_name",
    "role",
    "client_ip",
    "request_id",
    "action",
    "target_type",
    "target_id",
    "target_name",
    "data",
    "at",
)
# Any constant works; it names the lock that serialises chain appends on PostgreSQL.
PG_CHAIN_LOCK = 0x5157_4175  # "QWAu"
GUARD_MESSAGE = "accounts_auditentry is append-only"


# -- the chain -----------------------------------------------------------------------------------


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(values: Mapping[str, Any], prev_hash: str) -> bytes:
    """The bytes an entry's hash is taken over: its fields and prev_hash as sorted, compact JSON."""
    body = {name: values[name] for name in HASHED_FIELDS}
    body["at"] = _iso(values["at"])
    body["prev_hash"] = prev_hash
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(values: Mapping[str, Any], prev_hash: str) -> str:
    return hashlib.sha256(canonical(values, prev_hash)).hexdigest()


def _text(value: str) -> str:
    # PostgreSQL's jsonb refuses NUL and lone surrogates; record them rather than fail the write.
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _plain(value: Any) -> Any:
    """`data` as the database gives it back, so the hash taken now matches the stored row.

    Integral floats become ints (jsonb prints 1e20 as an integer); NaN and infinities, which
    JSON lacks, become strings.
    """
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return int(value) if value.is_integer() else value
    if value is None or isinstance(value, bool | int):
        return value
    return _text(str(value))


def _fit(value: str | None, field: str) -> str:
    limit = int(getattr(AuditEntry._meta.get_field(field), "max_length", 0) or 0)
    return _text((value or "")[:limit])


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PG_CHAIN_LOCK])


def record(
    actor: Actor,
    action: str,
    *,
    target_type: str,
    target_id: str,
    target_name: str = "",
    tenant_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the chain. `data` stays small and never holds secrets or env values.

    The entry is committed when this returns (unless the caller holds a transaction open).
    """
    values: dict[str, Any] = {
        "tenant_id": tenant_id if tenant_id is not None else actor.tenant_id,
        "actor_kind": _fit(actor.kind, "actor_kind"),
        "actor_id": _fit(actor.id, "actor_id"),
        "actor_name": _fit(actor.name, "actor_name"),
        "role": _fit(actor.role, "role"),
        "client_ip": _fit(actor.client_ip, "client_ip"),
        "request_id": _fit(actor.request_id, "request_id"),
        "action": _fit(action, "action"),
        "target_type": _fit(target_type, "target_type"),
        "target_id": _fit(target_id, "target_id"),
        "target_name": _fit(target_name, "target_name"),
        "data": _plain(data or {}),
        "at": timezone.now(),
    }

    def append() -> AuditEntry:
        with transaction.atomic():
            _lock_chain()
            head = AuditEntry.objects.order_by("-id").values_list("entry_hash", flat=True).first()
            prev = head or GENESIS
            return AuditEntry.objects.create(
                **values, prev_hash=prev, entry_hash=entry_hash(values, prev)
            )

    # An entry usually follows an engine change already made: it waits out a short database
    # outage rather than leave that change unaudited (apps.core.database).
    return until_written(append)


@dataclass(frozen=True)
class Verdict:
    count: int
    head: str
    bad_id: int | None = None
    problem: str = ""

    @property
    def intact(self) -> bool:
        return self.bad_id is None


def verify() -> Verdict:
    """Walk the chain oldest first; the first entry whose link or hash does not hold is named."""
    prev, prev_id, count = GENESIS, None, 0
    rows = AuditEntry.objects.order_by("id").values("id", *HASHED_FIELDS, "prev_hash", "entry_hash")
    for row in rows.iterator(chunk_size=2000):
        if row["prev_hash"] != prev:
            after = f"entry #{prev_id}" if prev_id is not None else "the start of the log"
            return Verdict(
                count,
                prev,
                row["id"],
                f"its prev_hash does not match {after}: an entry between them is missing, "
                "or this entry's prev_hash was changed",
            )
        if entry_hash(row, row["prev_hash"]) != row["entry_hash"]:
            return Verdict(count, prev, row["id"], "its fields do not match its entry_hash")
        prev, prev_id, count = row["entry_hash"], row["id"], count + 1
    return Verdict(count, prev)


# -- the append-only guard -----------------------------------------------------------------------

_GUARD_TABLE = (
    "CREATE TABLE accounts_auditguard (id integer PRIMARY KEY CHECK (id = 1), "
    "unlocked integer NOT NULL DEFAULT 0 CHECK (unlocked IN (0, 1)))"
)
_GUARD_ROW = "INSERT INTO accounts_auditguard (id, unlocked) VALUES (1, 0)"
_LOCKED = "COALESCE((SELECT unlocked FROM accounts_auditguard WHERE id = 1), 0) <> 1"

SQLITE_TRIGGERS = (
    "accounts_auditentry_no_update",
    "accounts_auditentry_no_delete",
    "accounts_auditentry_no_replace",
)
POSTGRESQL_TRIGGERS = ("accounts_auditentry_no_change", "accounts_auditentry_no_truncate")


def create_guard_sql(vendor: str, *, table: bool = True) -> list[str]:
    """The statements that make the audit table append-only on this database vendor.

    `table=False` gives only the triggers (and the PostgreSQL function), for a migration that
    rebuilt the audit table on SQLite and so dropped them.
    """
    head = [_GUARD_TABLE, _GUARD_ROW] if table else []
    if vendor == "sqlite":
        return [
            *head,
            *[
                f"CREATE TRIGGER accounts_auditentry_no_{op.lower()} BEFORE {op} "
                f"ON accounts_auditentry WHEN {_LOCKED} "
                f"BEGIN SELECT RAISE(ABORT, '{GUARD_MESSAGE}'); END"
                for op in ("UPDATE", "DELETE")
            ],
            *no_replace_sql(vendor),
        ]
    if vendor == "postgresql":
        return [
            *head,
            "CREATE OR REPLACE FUNCTION accounts_auditentry_refuse() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            f"IF {_LOCKED} THEN RAISE EXCEPTION USING "
            f"MESSAGE = '{GUARD_MESSAGE}: ' || TG_OP || ' refused', "
            "ERRCODE = 'restrict_violation'; END IF; "
            # A BEFORE row trigger that returns NULL would skip the row silently.
            "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER accounts_auditentry_no_change BEFORE UPDATE OR DELETE "
            "ON accounts_auditentry FOR EACH ROW EXECUTE FUNCTION accounts_auditentry_refuse()",
            "CREATE TRIGGER accounts_auditentry_no_truncate BEFORE TRUNCATE "
            "ON accounts_auditentry FOR EACH STATEMENT "
            "EXECUTE FUNCTION accounts_auditentry_refuse()",
        ]
    raise NotImplementedError(
        f"the append-only audit guard knows sqlite and postgresql, not {vendor}"
    )


def no_replace_sql(vendor: str) -> list[str]:
    """The SQLite trigger that refuses an INSERT whose id is already taken (migration 0004).

    `INSERT OR REPLACE` (or `REPLACE INTO`) with an existing id deletes that row and inserts
    the new one; with recursive_triggers off (SQLite's default) the DELETE trigger does not
    fire, so the entry would be rewritten in place. A BEFORE INSERT trigger runs before the
    conflict is resolved, so it refuses the statement first. `id` is the table's only unique
    column. Idempotent (`IF NOT EXISTS`): `create_guard_sql` includes it for fresh databases
    and rebuilt tables. PostgreSQL needs none: its upsert is an UPDATE.
    """
    if vendor != "sqlite":
        return []
    # Built from module constants only, never from input.
    return [
        "CREATE TRIGGER IF NOT EXISTS accounts_auditentry_no_replace BEFORE INSERT "  # noqa: S608
        "ON accounts_auditentry WHEN "
        f"{_LOCKED} AND EXISTS (SELECT 1 FROM accounts_auditentry WHERE id = NEW.id) "
        f"BEGIN SELECT RAISE(ABORT, '{GUARD_MESSAGE}: an entry with this id exists'); END"
    ]


def drop_guard_sql(vendor: str) -> list[str]:
    if vendor == "sqlite":
        drops = [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]
    else:
        drops = [f"DROP TRIGGER IF EXISTS {n} ON accounts_auditentry" for n in POSTGRESQL_TRIGGERS]
        drops.append("DROP FUNCTION IF EXISTS accounts_auditentry_refuse()")
    return [*drops, "DROP TABLE IF EXISTS accounts_auditguard"]


def guard_installed(conn: BaseDatabaseWrapper = connection) -> bool:
    """Whether this database has every trigger that keeps the audit table append-only."""
    with conn.cursor() as cursor:
        if conn.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'accounts_auditentry'"
            )
            expected: tuple[str, ...] = SQLITE_TRIGGERS
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger "
                "WHERE tgrelid = 'accounts_auditentry'::regclass AND NOT tgisinternal"
            )
            expected = POSTGRESQL_TRIGGERS
        return set(expected) <= {name for (name,) in cursor.fetchall()}


@contextlib.contextmanager
def unlocked() -> Iterator[None]:
    """Lift the guard for what runs inside, within one transaction; for the test suite's flush.

    The guard row is set and reset in the same transaction, so other connections never see it
    lifted; if the block raises, the rollback restores it.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_auditguard SET unlocked = 1 WHERE id = 1")
        yield
        cursor.execute("UPDATE accounts_auditguard SET unlocked = 0 WHERE id = 1")
