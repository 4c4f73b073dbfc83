"""The containers dashboard pages through Django's client (CSRF enforced), on the real engine."""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import pytest
from django.conf import settings

from apps.accounts.models import Tenant
from apps.containers import actions
from apps.containers.models import ContainerRecord
from apps.containers.validation import validate_create

pytestmark = [pytest.mark.engine, pytest.mark.django_db]
SUFFIX = secrets.token_hex(3)


def csrf(person: Any, path: str = "/containers/new") -> str:
    page = person.client.get(path)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert match, "no csrf token on " + path
    return match.group(1)


def post(person: Any, path: str, data: dict[str, Any], *, token_from: str = "") -> Any:
    token = csrf(person, token_from or "/containers/")
    return person.client.post(path, {**data, "csrfmiddlewaretoken": token})


def make(person: Any, name: str, **body: Any) -> ContainerRecord:
    """A container created through the action layer (the API's path), as `person`."""
    from apps.accounts.actor import Actor

    actor = Actor(
        "user",
        str(person.user.id),
        person.user.username,
        person.tenant.pk,
        person.role,
        person.role == "admin",
        person.user.id,
    )
    # Docker names are engine-wide and other test sessions may run in parallel: keep ours unique.
    spec = validate_create({"name": f"{name}-{SUFFIX}", **body}, person.tenant)
    target = actions.create_container(actor, person.tenant, spec)
    return target.record


def test_it_redirects_root_to_the_container_list(viewer: Any) -> None:
    response = viewer.client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/containers/"


def test_it_shows_an_empty_state_that_says_what_to_do(operator: Any, viewer: Any) -> None:
    page = operator.client.get("/containers/").content.decode()
    assert "No containers yet" in page
    assert 'href="/containers/new"' in page
    assert (
        "New container"
        not in viewer.client.get("/containers/")
        .content.decode()
        .split("No containers yet")[1][:400]
    )


def test_it_lists_filters_and_paginates(operator: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(settings, "QUILTWEB_PAGE_SIZE", 2)
    make(operator, "web-1", labels={"team": "web"})
    make(operator, "web-2", labels={"team": "web"})
    db = make(operator, "db-1", labels={"team": "db"})

    first = operator.client.get("/containers/").content.decode()
    assert "Page 1 of 2" in first
    assert 'rel="next"' in first
    second = operator.client.get("/containers/?page=2").content.decode()
    assert "Page 2 of 2" in second

    by_label = operator.client.get("/containers/?q=team%3Ddb").content.decode()
    assert "db-1" in by_label and "web-1" not in by_label
    by_prefix = operator.client.get(f"/containers/?q={db.container_id[:12]}").content.decode()
    assert "db-1" in by_prefix and "web-2" not in by_prefix
    by_name = operator.client.get("/containers/?q=web").content.decode()
    assert "web-1" in by_name and "db-1" not in by_name

    actions.stop_container(_target(operator, db), timeout_seconds=0)
    exited = operator.client.get("/containers/?state=exited").content.decode()
    assert "db-1" in exited and "web-1" not in exited
    running = operator.client.get("/containers/?state=running").content.decode()
    assert "db-1" not in running

    rows = operator.client.get(
        "/containers/?state=exited", headers={"HX-Request": "true", "HX-Target": "container-rows"}
    )
    body = rows.content.decode()
    assert body.lstrip().startswith('<section id="container-rows"')
    assert "sse:container_update" in body and "every 10s" in body


def test_it_answers_an_unknown_state_filter_with_a_message_not_an_error(viewer: Any) -> None:
    response = viewer.client.get("/containers/?state=sideways")
    assert response.status_code == 200
    assert "unknown state" in response.content.decode()


def _target(person: Any, record: ContainerRecord) -> Any:
    from apps.containers.access import resolve

    class R:
        user = person.user
        api_key = None

    from apps.accounts.actor import actor_for

    target = resolve(actor_for(R()), record.container_id)
    assert target is not None
    return target


BAD_INPUTS = [
    ({"name": ""}, "name"),
    ({"name": "-starts-with-dash"}, "name"),
    ({"name": "ok", "environment": "NOEQUALS"}, "environment"),
    ({"name": "ok", "environment": "1BAD=x"}, "environment"),
    ({"name": "ok", "labels": "io.quiltweb.managed=false"}, "labels"),
    ({"name": "ok", "working_directory": "relative/path"}, "working_directory"),
    ({"name": "ok", "memory_limit_mb": "4"}, "memory_limit_mb"),
    ({"name": "ok", "memory_limit_mb": "lots"}, "memory_limit_mb"),
    ({"name": "ok", "cpu_limit_percent": "0"}, "cpu_limit_percent"),
    ({"name": "ok", "volumes": "no-such-volume:/data"}, "volumes"),
    ({"name": "ok", "volumes": "relative"}, "volumes"),
    ({"name": "ok", "image": "no/such-image:nope"}, "image"),
    ({"name": "ok", "image": "prod-gui"}, "image"),
]


@pytest.mark.parametrize(("data", "field"), BAD_INPUTS)
def test_it_shows_create_errors_inline_and_keeps_the_input(
    operator: Any, data: dict[str, Any], field: str
) -> None:
    form = {"image": "quilt/base", "command": "/bin/sleep\n1000", **data}
    response = post(operator, "/containers/new", form, token_from="/containers/new")
    assert response.status_code == 422
    page = response.content.decode()
    # The error sits in the field's own block, and what was typed is still there.
    head, after = page.split(f'id="id_{field}"', 1)
    if head.rfind("<select") > head.rfind(">"):
        # A <select>'s block goes on after its options, however many images the engine holds.
        after = after.split("</select>", 1)[1]
    block = after[:1500]
    assert "field-error" in block, page
    assert "/bin/sleep" in page
    assert ContainerRecord.objects.count() == 0


def test_it_reports_a_duplicate_name_next_to_the_name(operator: Any) -> None:
    taken = make(operator, "taken")
    response = post(operator, "/containers/new", {"name": taken.name, "image": "quilt/base"})
    assert response.status_code == 422
    block = response.content.decode().split('id="id_name"')[1][:800]
    assert "field-error" in block


def test_it_creates_from_the_form_and_lands_on_the_page(operator: Any) -> None:
    response = post(
        operator,
        "/containers/new",
        {
            "name": f"from-form-{SUFFIX}",
            "image": "quilt/base",
            "command": "sleep 1000",
            "run_in_shell": "on",
            "environment": "GREETING=hello world\nEMPTY=",
            "labels": "team=web",
            "working_directory": "/tmp",
            "memory_limit_mb": "64",
            "cpu_limit_percent": "50",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    record = ContainerRecord.objects.get(name=f"from-form-{SUFFIX}")
    assert response["Location"] == f"/containers/{record.container_id}/"
    assert record.command == ["/bin/sh", "-lc", "sleep 1000"]
    assert record.environment == {"GREETING": "hello world", "EMPTY": ""}
    assert record.labels == {"team": "web"}
    page = operator.client.get(response["Location"]).content.decode()
    assert "from-form" in page
    assert 'id="readiness"' in page
    assert 'data-check="minit_responsive"' in page


def test_it_forbids_a_viewer_to_stop(operator: Any, viewer: Any) -> None:
    record = make(operator, "keep-running")
    response = post(viewer, f"/containers/{record.container_id}/stop", {})
    assert response.status_code == 403
    page = viewer.client.get(f"/containers/{record.container_id}/").content.decode()
    assert "your role (viewer) cannot act" in page.lower()
    assert Tenant.objects.count() >= 1


def test_it_hides_our_container_from_another_tenant(operator: Any, outsider: Any) -> None:
    record = make(operator, "private")
    assert outsider.client.get(f"/containers/{record.container_id}/").status_code == 404
    assert outsider.client.get(f"/containers/{record.container_id}/logs").status_code == 404
    assert "private" not in outsider.client.get("/containers/").content.decode()
    resolved = outsider.client.get("/containers/resolve?q=private")
    assert resolved["Location"] == "/containers/?q=private"


def test_it_resolves_names_and_id_prefixes(operator: Any) -> None:
    record = make(operator, "findme")
    by_name = operator.client.get(f"/containers/resolve?q={record.name}")
    assert by_name["Location"] == f"/containers/{record.container_id}/"
    by_prefix = operator.client.get(f"/containers/resolve?q={record.container_id[:8]}")
    assert by_prefix["Location"] == f"/containers/{record.container_id}/"
    other = operator.client.get("/containers/resolve?q=find")
    assert other["Location"] == "/containers/?q=find"


def test_it_stops_and_deletes_from_the_page(operator: Any) -> None:
    record = make(operator, "short-lived")
    path = f"/containers/{record.container_id}/"
    token = csrf(operator, path)
    stop = operator.client.post(
        path + "stop", {"csrfmiddlewaretoken": token}, headers={"HX-Request": "true"}
    )
    assert stop.status_code == 200
    assert "Stopped." in stop.content.decode()
    # trigger_client_event sends the event as JSON (htmx fires it the same way).
    assert json.loads(stop["HX-Trigger"]) == {"containerChanged": {}}
    page = operator.client.get(path).content.decode()
    assert 'id="container-state">exited' in page
    deleted = operator.client.post(path + "delete", {"csrfmiddlewaretoken": token})
    assert deleted.status_code == 302
    assert operator.client.get(path).status_code == 404


def test_it_runs_exec_inline_and_keeps_a_history(operator: Any, support: Any, viewer: Any) -> None:
    record = make(operator, "exec-here")
    path = f"/containers/{record.container_id}/"
    token = csrf(support, path)
    response = support.client.post(
        path + "exec",
        {
            "csrfmiddlewaretoken": token,
            "command": "echo out; echo err >&2; exit 3",
            "run_in_shell": "on",
            "timeout_s": "10",
        },
        headers={"HX-Request": "true", "HX-Target": "exec-result"},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "exit 3" in body and 'id="exec-stdout">out' in body and 'id="exec-stderr">err' in body
    assert 'id="exec-history"' in body and 'hx-swap-oob="true"' in body
    argv = support.client.post(
        path + "exec",
        {"csrfmiddlewaretoken": token, "command": "/bin/echo\nhello  world", "timeout_s": "10"},
        headers={"HX-Request": "true"},
    )
    assert "hello  world" in argv.content.decode()
    from apps.containers.models import ExecRecord

    assert ExecRecord.objects.filter(container_id=record.container_id).count() == 2
    page = support.client.get(path).content.decode()
    assert "Recent commands" in page and "exit 3" in page
    denied = viewer.client.post(
        path + "exec", {"csrfmiddlewaretoken": csrf(viewer, path), "command": "id"}
    )
    assert denied.status_code == 403


def test_it_shows_not_ready_with_a_link_to_readiness(operator: Any) -> None:
    record = make(operator, "stopped-one")
    actions.stop_container(_target(operator, record), timeout_seconds=0)
    path = f"/containers/{record.container_id}/"
    response = operator.client.post(
        path + "exec",
        {"csrfmiddlewaretoken": csrf(operator, path), "command": "true", "run_in_shell": "on"},
        headers={"HX-Request": "true"},
    )
    body = response.content.decode()
    assert "Not ready for exec" in body and "#readiness" in body
    procs = operator.client.get(path + "processes").content.decode()
    assert "Not ready" in procs


def test_it_renders_logs_metrics_processes_and_downloads_logs(operator: Any, viewer: Any) -> None:
    record = make(
        operator,
        "chatty",
        command=["/bin/sh", "-c", "echo line-one; echo line-two >&2; sleep 1000"],
    )
    path = f"/containers/{record.container_id}/"
    logs = operator.client.get(path + "logs?limit=500&follow=1").content.decode()
    assert "line-one" in logs and "is-stderr" in logs and 'hx-trigger="every 2s"' in logs
    download = operator.client.get(path + "logs/download?limit=100")
    assert download["Content-Disposition"] == f'attachment; filename="{record.name}-logs.txt"'
    assert b"line-two" in b"".join(download.streaming_content)  # streamed: the whole log
    assert "cannot read logs" in viewer.client.get(path + "logs").content.decode()
    metrics = viewer.client.get(path + "metrics").content.decode()
    assert 'id="metric-cpu"' in metrics and "<polyline" in metrics
    procs = operator.client.get(path + "processes").content.decode()
    assert "sleep 1000" in procs and "SIGTERM" in procs
    assert "SIGTERM" not in viewer.client.get(path + "processes").content.decode()


def test_it_signals_a_process_from_its_row(operator: Any) -> None:
    record = make(operator, "sig", command=["/bin/sh", "-c", "sleep 1000 & wait"])
    path = f"/containers/{record.container_id}/"
    target = _target(operator, record)
    from apps.containers import status as st

    sleeper = next(p for p in st.processes(target) if p["command"].startswith("sleep"))
    response = operator.client.post(
        path + f"processes/{sleeper['pid']}/signal",
        {"csrfmiddlewaretoken": csrf(operator, path), "signal": "KILL"},
        headers={"HX-Request": "true"},
    )
    assert f"Sent SIGKILL to {sleeper['pid']}" in response.content.decode()
    missing = operator.client.post(
        path + "processes/99999/signal",
        {"csrfmiddlewaretoken": csrf(operator, path), "signal": "TERM"},
        headers={"HX-Request": "true"},
    )
    assert "field-error" in missing.content.decode()


def test_it_masks_env_for_viewers_and_lets_operators_edit(operator: Any, viewer: Any) -> None:
    record = make(operator, "envy", environment={"SECRET": "hunter2"})
    path = f"/containers/{record.container_id}/env"
    seen = viewer.client.get(path + "?reveal=1").content.decode()
    assert "SECRET" in seen and "hunter2" not in seen and "••••" in seen
    assert "hunter2" not in operator.client.get(path).content.decode()
    assert "hunter2" in operator.client.get(path + "?reveal=1").content.decode()
    token = csrf(operator, path)
    bad = operator.client.post(
        path,
        {"csrfmiddlewaretoken": token, "key": "1-bad", "value": "x"},
        headers={"HX-Request": "true"},
    )
    assert "env-key-error" in bad.content.decode()
    ok = operator.client.post(
        path,
        {"csrfmiddlewaretoken": token, "key": "NEW_KEY", "value": "v"},
        headers={"HX-Request": "true"},
    )
    assert "Saved NEW_KEY" in ok.content.decode()
    operator.client.post(path, {"csrfmiddlewaretoken": token, "delete": "SECRET"})
    record.refresh_from_db()
    assert record.environment == {"NEW_KEY": "v"}
    assert (
        viewer.client.post(
            path, {"csrfmiddlewaretoken": csrf(viewer, path), "key": "X", "value": "y"}
        ).status_code
        == 403
    )


def test_it_renames_inline_and_shows_a_conflict_next_to_the_field(operator: Any) -> None:
    record = make(operator, "before")
    other = make(operator, "other")
    path = f"/containers/{record.container_id}/"
    form = operator.client.get(path + "rename", headers={"HX-Request": "true"}).content.decode()
    assert 'name="new_name"' in form and record.name in form
    token = csrf(operator, path)
    clash = operator.client.post(
        path + "rename",
        {"csrfmiddlewaretoken": token, "new_name": other.name},
        headers={"HX-Request": "true"},
    )
    assert "new-name-error" in clash.content.decode()
    new_name = f"after-{SUFFIX}"
    done = operator.client.post(
        path + "rename",
        {"csrfmiddlewaretoken": token, "new_name": new_name},
        headers={"HX-Request": "true"},
    )
    # trigger_client_event sends the event as JSON (htmx fires it the same way).
    assert json.loads(done["HX-Trigger"]) == {"containerChanged": {}}
    assert f"<h1>{new_name}</h1>" in operator.client.get(path).content.decode()


def test_it_queues_start_as_an_operation_and_shows_it_in_place(operator: Any) -> None:
    record = make(operator, "restart-me")
    actions.stop_container(_target(operator, record), timeout_seconds=0)
    path = f"/containers/{record.container_id}/"
    token = csrf(operator, path)
    response = operator.client.post(
        path + "start",
        {"csrfmiddlewaretoken": token},
        headers={"HX-Request": "true", "Idempotency-Key": "k-" + SUFFIX},
    )
    body = response.content.decode()
    assert 'id="op-status"' in body and "start · " in body
    assert "every 1s" in body  # polls until the operation is terminal
    assert "A start operation is in progress." in body  # a tooltip on each locked button
    again = operator.client.post(
        path + "start",
        {"csrfmiddlewaretoken": token},
        headers={"HX-Request": "true", "Idempotency-Key": "k-" + SUFFIX},
    )
    op_id = re.search(r"op_[0-9a-f]{24}", body).group(0)  # type: ignore[union-attr]
    assert (
        op_id in again.content.decode()
    )  # the same key gets the same operation, not a second start


def test_any_refresh_of_the_action_bar_still_shows_the_last_start(operator: Any) -> None:
    """A live update can overtake the click's own answer; the bar must not lose the result."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.operations.models import Operation

    record = make(operator, "refresh-me")
    actions.stop_container(_target(operator, record), timeout_seconds=0)
    path = f"/containers/{record.container_id}/"
    token = csrf(operator, path)
    operator.client.post(
        path + "start", {"csrfmiddlewaretoken": token}, headers={"HX-Request": "true"}
    )
    op = Operation.objects.get(kind="start", target_id=record.container_id)
    # The bar as a live update asks for it: no ?op= in the URL.
    bar = operator.client.get(path + "actions", headers={"HX-Request": "true"}).content.decode()
    assert 'id="op-status"' in bar and op.operation_id in bar
    # A minute later it is history, not news.
    Operation.objects.filter(pk=op.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    bar = operator.client.get(path + "actions", headers={"HX-Request": "true"}).content.decode()
    assert 'id="op-status"' not in bar


def test_it_locks_the_run_button_until_exec_ready_and_unlocks_it_from_the_readiness_panel(
    operator: Any,
) -> None:
    record = make(operator, "gate")
    actions.stop_container(_target(operator, record), timeout_seconds=0)
    path = f"/containers/{record.container_id}/"
    page = operator.client.get(path).content.decode()
    gate = page.split('id="exec-gate"')[1][:800]
    assert "disabled" in gate and "Not exec-ready yet" in gate
    from apps.engine.client import engine

    engine().start(record.container_id)  # as if started elsewhere; the panel notices on refresh
    panel = operator.client.get(path + "readiness", headers={"HX-Request": "true"}).content.decode()
    assert 'id="exec-gate" class="exec-gate" hx-swap-oob="true"' in panel
    assert (
        ">Run</button>" in panel.split('id="exec-gate"')[1]
        and "disabled" not in panel.split('id="exec-gate"')[1][:400]
    )


def test_it_makes_one_start_operation_for_a_double_submitted_plain_form(operator: Any) -> None:
    from apps.operations.models import Operation

    record = make(operator, "double")
    actions.stop_container(_target(operator, record), timeout_seconds=0)
    listing = operator.client.get("/containers/?state=exited").content.decode()
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', listing).group(1)  # type: ignore[union-attr]
    token = csrf(operator)
    for _ in range(2):
        response = operator.client.post(
            f"/containers/{record.container_id}/start",
            {
                "csrfmiddlewaretoken": token,
                "idempotency_key": key,
                "next": "/containers/?state=exited",
            },
        )
        assert response.status_code == 302 and response["Location"] == "/containers/?state=exited"
    assert Operation.objects.filter(kind="start", target_id=record.container_id).count() == 1


def test_it_keeps_an_unknown_image_selected_after_the_error(operator: Any) -> None:
    response = post(operator, "/containers/new", {"name": "img", "image": "no/such-image:nope"})
    page = response.content.decode()
    assert '<option value="no/such-image:nope" selected>' in page
    assert "not found locally" in page


def test_it_says_what_was_deleted_on_the_list(operator: Any) -> None:
    record = make(operator, "gone")
    path = f"/containers/{record.container_id}/"
    response = operator.client.post(
        path + "delete", {"csrfmiddlewaretoken": csrf(operator, path)}, follow=True
    )
    assert f"Deleted {record.name}" in response.content.decode()


def test_it_gives_every_tab_its_literal_path_and_marks_the_current_one(operator: Any) -> None:
    record = make(operator, "tabs")
    base = f"/containers/{record.container_id}/"
    page = operator.client.get(base + "metrics").content.decode()
    nav = page.split('id="container-tabs"')[1].split("</nav>")[0]
    for suffix in (
        "",
        "logs",
        "metrics",
        "env",
        "processes",
        "network",
        "snapshots",
        "terminal",
        "activity",
    ):
        assert f'href="{base}{suffix}"' in nav
    assert 'aria-current="page">Metrics' in nav
    assert 'hx-select="#tab-panel"' in nav and "hx-push-url" in nav


def test_it_sends_the_run_button_only_to_the_overview_tab(operator: Any) -> None:
    record = make(operator, "gate-tab")
    base = f"http://testserver/containers/{record.container_id}/"
    on_logs = operator.client.get(
        base + "readiness", headers={"HX-Request": "true", "HX-Current-URL": base + "logs"}
    )
    assert 'id="exec-gate"' not in on_logs.content.decode()
    on_overview = operator.client.get(
        base + "readiness", headers={"HX-Request": "true", "HX-Current-URL": base}
    )
    assert 'id="exec-gate"' in on_overview.content.decode()


def test_the_logs_tab_searches_marks_matches_and_words_a_bad_pattern_as_the_form(
    operator: Any,
) -> None:
    record = make(
        operator,
        "searchable",
        command=["/bin/sh", "-c", "echo alpha-one; echo beta-two; echo ALPHA-three; sleep 1000"],
    )
    path = f"/containers/{record.container_id}/logs"
    html = operator.client.get(path + "?q=alpha").content.decode()
    assert '<mark class="log-match">alpha</mark>-one' in html
    assert '<mark class="log-match">ALPHA</mark>-three' in html and "beta-two" not in html
    assert "2 matching lines" in html
    assert 'href="' + path + '/download?q=alpha"' in html
    bad = operator.client.get(path + "?q=/(oops/").content.decode()
    assert "The search is not a valid regular expression" in bad and 'aria-invalid="true"' in bad
    download = operator.client.get(path + "/download?q=/two$/")
    assert b"".join(download.streaming_content).decode().endswith(" stdout beta-two\n")
