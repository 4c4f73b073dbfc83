"""Watching a terminal and taking one over (2.14) on the real ASGI app and a real engine."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from apps.accounts.models import AuditEntry
from tests.terminals.conftest import Term, attach, shell

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


async def _watch(person: Any, session_id: str, mode: str = "watch") -> Term:
    term, connected = await attach(f"session_id={session_id}&mode={mode}", token=person.key)
    assert connected
    return term


def _audit(action: str, session_id: str) -> list[tuple[str, str]]:
    rows = AuditEntry.objects.filter(action=action, target_id=session_id)
    return list(rows.values_list("actor_name", "role"))


async def test_it_lets_support_watch_read_only_and_tells_the_owner(
    operator: Any, support: Any, box: dict[str, Any]
) -> None:
    owner = await shell(operator, box)
    session_id = owner.session_id  # type: ignore[attr-defined]
    await owner.send(b"echo before-$((2*3))\n")
    await owner.until(b"before-6")

    watcher = await _watch(support, session_id)
    ready = await watcher.control("ready")
    assert ready["mode"] == "watch"
    assert ready["session_id"] == session_id
    await watcher.until(b"before-6")  # the scrollback
    assert (await owner.control("watchers"))["count"] == 1

    # The owner's output reaches the watcher; the watcher's input reaches nothing.
    await watcher.send(b"touch /tmp/watched; echo typed-by-$((40+2))\n")
    error = await watcher.control("error")
    assert error["code"] == "READ_ONLY"
    await watcher.json(type="resize", cols=40, rows=10)
    await watcher.json(type="signal", signal="SIGINT")
    await watcher.send(b"echo again\n")
    await owner.send(b"stty size; ls /tmp/watched; echo after-$((3*3))\n")
    await owner.until(b"after-9")
    await watcher.until(b"after-9")
    assert b"typed-by-42" not in owner.output
    assert b"No such file" in owner.output
    assert b"10 40" not in owner.output
    assert not [c for c in watcher.controls if c["type"] == "error"]  # told once only

    # The watcher took nothing over: the owner's socket is still the session's.
    assert owner.closed is None
    await watcher.disconnect()
    assert (await owner.control("watchers"))["count"] == 0
    await owner.disconnect()

    audited = await sync_to_async(_audit, thread_sensitive=False)("terminal.watched", session_id)
    assert audited == [("sam-support (tests)", "support")]


async def test_it_counts_every_watcher_and_ends_them_with_the_session(
    operator: Any, support: Any, admin: Any, box: dict[str, Any]
) -> None:
    owner = await shell(operator, box)
    session_id = owner.session_id  # type: ignore[attr-defined]
    first = await _watch(support, session_id)
    await first.control("ready")
    assert (await owner.control("watchers"))["count"] == 1
    second = await _watch(admin, session_id)
    await second.control("ready")
    assert (await owner.control("watchers"))["count"] == 2
    assert [(await first.control("watchers"))["count"] for _ in range(2)] == [1, 2]

    await owner.send(b"exit 3\n")
    for term in (owner, first, second):
        assert (await term.control("exit"))["code"] == 3
        assert await term.close_code() == 1000


async def test_it_lets_the_owner_watch_and_refuses_those_who_may_not(
    operator: Any,
    support: Any,
    viewer: Any,
    outsider: Any,
    django_user_model: Any,
    tenant: Any,
    box: dict[str, Any],
) -> None:
    from tests.conftest import make_person

    owner = await shell(support, box)
    session_id = owner.session_id  # type: ignore[attr-defined]
    mine = await _watch(support, session_id)
    assert (await mine.control("ready"))["mode"] == "watch"
    await mine.disconnect()

    other_operator = await sync_to_async(make_person, thread_sensitive=False)(
        django_user_model, "otto-operator", "operator", tenant
    )
    for person, code in ((other_operator, 4404), (outsider, 4404), (viewer, 4403)):
        refused = await _watch(person, session_id)
        assert await refused.close_code() == code, person.user.username
    assert owner.closed is None
    await owner.disconnect()


async def test_an_admins_plain_attach_does_not_take_another_users_session(
    operator: Any, admin: Any, box: dict[str, Any]
) -> None:
    owner = await shell(operator, box)
    session_id = owner.session_id  # type: ignore[attr-defined]
    plain, connected = await attach(f"session_id={session_id}", token=admin.key)
    assert connected
    error = await plain.control("error")
    assert error["code"] == "NOT_OWNER"
    assert "mode=watch" in error["message"] and "mode=takeover" in error["message"]
    assert await plain.close_code() == 4403
    await owner.send(b"echo still-mine-$((5+5))\n")
    await owner.until(b"still-mine-10")
    assert owner.closed is None
    await owner.disconnect()


async def test_only_an_admin_takes_over_and_the_owner_is_told_who(
    operator: Any, support: Any, admin: Any, box: dict[str, Any]
) -> None:
    owner = await shell(operator, box)
    session_id = owner.session_id  # type: ignore[attr-defined]

    refused = await _watch(support, session_id, mode="takeover")
    assert (await refused.control("error"))["code"] == "FORBIDDEN"
    assert await refused.close_code() == 4403

    taker = await _watch(admin, session_id, mode="takeover")
    assert "mode" not in await taker.control("ready")
    told = await owner.control("error")
    assert told["code"] == "TAKEN_OVER"
    assert told["message"] == "taken over by alice-admin (tests)"
    assert told["by"] == "alice-admin (tests)"
    assert await owner.close_code() == 4000
    await taker.send(b"echo admin-$((6+1))\n")
    await taker.until(b"admin-7")
    audited = await sync_to_async(_audit, thread_sensitive=False)("terminal.taken_over", session_id)
    assert audited == [("alice-admin (tests)", "admin")]

    # The owner takes it back with a plain attach; the admin hears who.
    back, connected = await attach(f"session_id={session_id}", token=operator.key)
    assert connected
    await back.control("ready")
    told = await taker.control("error")
    assert told["message"] == "taken over by oscar-operator (tests)"
    assert await taker.close_code() == 4000
    await back.disconnect()


async def test_a_second_window_of_the_owner_says_opened_in_another_window(
    support: Any, box: dict[str, Any]
) -> None:
    first = await shell(support, box)
    second, _ = await attach(f"session_id={first.session_id}", token=support.key)  # type: ignore[attr-defined]
    await second.control("ready")
    told = await first.control("error")
    assert (told["code"], told["message"]) == ("TAKEN_OVER", "opened in another window")
    assert "by" not in told
    assert await first.close_code() == 4000
    await second.disconnect()


async def test_a_watcher_follows_the_pty_size(
    operator: Any, support: Any, box: dict[str, Any]
) -> None:
    owner = await shell(operator, box)
    watcher = await _watch(support, owner.session_id)  # type: ignore[attr-defined]
    await watcher.control("ready")
    await owner.json(type="resize", cols=101, rows=33)
    size = await watcher.control("size")
    assert (size["cols"], size["rows"]) == (101, 33)
    await watcher.disconnect()
    await owner.disconnect()


async def test_it_refuses_an_unknown_mode_and_a_watch_without_a_session(
    support: Any, box: dict[str, Any]
) -> None:
    owner = await shell(support, box)
    bogus = await _watch(support, owner.session_id, mode="steal")  # type: ignore[attr-defined]
    assert await bogus.close_code() == 4400
    nothing, _ = await attach(f"container_id={box['container_id']}&mode=watch", token=support.key)
    assert (await nothing.control("error"))["code"] == "UNPROCESSABLE_ENTITY"
    assert await nothing.close_code() == 4400
    await owner.disconnect()
    await asyncio.sleep(0)


async def test_a_watcher_that_stops_acking_never_slows_the_owner(
    operator: Any, support: Any, box: dict[str, Any]
) -> None:
    from apps.terminals import consumers

    owner = await shell(operator, box)
    watcher = await _watch(support, owner.session_id)  # type: ignore[attr-defined]
    await watcher.control("ready")
    await watcher.json(type="ack", bytes=0)  # flow control on, then no more acks
    await owner.send(b"head -c 3000000 /dev/zero | tr '\\0' x; echo; echo E''ND\n")
    await owner.until(b"END\r\n", timeout=60)  # all 3 MB reached the owner
    await asyncio.sleep(0.5)
    while not watcher.ws.output_queue.empty():
        await watcher.pump(1)
    held = len(watcher.output)
    assert held < consumers.HIGH_WATER + 1024 * 1024  # the watcher's feed stopped
    # Acknowledging resumes it from the scrollback, saying what it missed.
    await watcher.json(type="ack", bytes=held)
    await watcher.until(b"END\r\n")
    skipped = next(c for c in watcher.controls if c["type"] == "error")
    assert skipped["code"] == "OUTPUT_SKIPPED"
    await watcher.disconnect()
    await owner.disconnect()
