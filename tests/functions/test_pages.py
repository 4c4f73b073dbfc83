"""The functions pages: login and roles, the list with its create form, the function page's
tabs (overview, invoke, invocations with keyset pages, versions with diff and rollback), the
header search and the container page's "serves function" line."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.actor import actor_for
from apps.containers.status import served_function
from apps.core.labels import LABEL_FUNCTION, LABEL_FUNCTION_NAME, LABEL_FUNCTION_VERSION
from apps.functions import actions
from apps.functions.forms import initial_for
from apps.functions.models import Function, FunctionState, Invocation, PoolContainer
from apps.functions.reconcile import reconcile_pools
from apps.functions.validation import validate_spec
from apps.functions.views import INVOCATIONS_PAGE, spec_diff
from apps.health import checks as health_checks
from apps.operations.models import Operation
from tests.functions.poolkit import deploy, engine_pool

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


class _Req:
    def __init__(self, person: Any) -> None:
        self.user = person.user


def make_function(person: Any, name: str = "pagefn", **body: Any) -> Function:
    spec = validate_spec({"name": name, "handler": "cat", **body})
    return actions.create_function(actor_for(_Req(person)), person.tenant, spec)


def csrf(client: Any) -> str:
    client.get("/functions/")
    return str(client.cookies["csrftoken"].value)


def add_invocations(fn: Function, count: int, status: str = "success") -> None:
    now = timezone.now()
    Invocation.objects.bulk_create(
        [
            Invocation(
                function=fn,
                tenant_id=fn.tenant_id,
                function_name=fn.name,
                version=1,
                status=status,
                started_at=now - timedelta(seconds=count - i),
                ended_at=now,
                duration_ms=i,
                exit_code=0 if status == "success" else 1,
                stdout=f"out-{i}",
            )
            for i in range(count)
        ]
    )


def test_it_requires_login_for_every_page(client, operator):
    fn = make_function(operator)
    for path in (
        "/functions/",
        f"/functions/{fn.function_id}/",
        f"/functions/{fn.function_id}/invoke",
        f"/functions/{fn.function_id}/invocations/",
        f"/functions/{fn.function_id}/versions",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/accounts/login/" in response["Location"]


def test_it_lists_functions_with_state_gauge_and_counts(operator):
    fn = make_function(operator, max_instances=4)
    make_function(operator, "otherfn")
    html = operator.client.get("/functions/").content.decode()
    assert f'id="function-{fn.function_id}"' in html
    assert "fn-state-pending" in html
    assert "0 ready" in html and "0 busy" in html and "of 4" in html
    assert 'aria-current="page">Functions<' in html
    filtered = operator.client.get("/functions/?q=other").content.decode()
    assert "otherfn" in filtered and f'id="function-{fn.function_id}"' not in filtered
    by_state = operator.client.get("/functions/?state=active").content.decode()
    assert "No functions match" in by_state
    rows = operator.client.get(
        "/functions/?q=pagefn", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="function-rows"
    )
    assert rows.content.decode().lstrip().startswith('<section id="function-rows"')


def test_it_creates_a_function_from_the_form(operator):
    token = csrf(operator.client)
    ok = operator.client.post(
        "/functions/create",
        {"name": "formfn", "handler": "cat", "min_instances": "0", "max_instances": "2"},
        HTTP_X_CSRFTOKEN=token,
    )
    fn = Function.objects.get(name="formfn")
    assert ok.status_code == 302 and ok["Location"] == f"/functions/{fn.function_id}/"
    assert fn.state == FunctionState.PENDING and fn.max_instances == 2


@pytest.mark.parametrize(
    ("data", "label"),
    [
        ({"name": "x1", "handler": "cat", "memory_limit_mb": "128"}, "Memory (MiB)"),
        ({"name": "x2", "handler": "cat", "min_instances": "3", "max_instances": "2"}, None),
        ({"name": "x3", "handler": "cat", "timeout_seconds": "soon"}, "Timeout (s)"),
        ({"name": "x4", "handler": ""}, "Handler"),
        ({"name": "bad name!", "handler": "cat"}, "Name"),
    ],
)
def test_it_shows_bad_form_input_in_the_forms_words(operator, data, label):
    token = csrf(operator.client)
    response = operator.client.post("/functions/create", data, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 422
    html = response.content.decode()
    assert "The function was not created." in html
    errors = re.search(r'id="fn-create-errors">(.*?)</div>', html, re.S)
    assert errors is not None
    if label is not None:
        assert f"<li>{label}:" in errors.group(1)
    else:  # min above max: named by a field of the form, not by an API field name
        assert re.search(r"<li>(Minimum|Maximum) instances:", errors.group(1))
    assert "_instances" not in errors.group(1) and "memory_limit_mb" not in errors.group(1)
    assert not Function.objects.filter(name=data["name"]).exists()
    # What was typed stays in the form.
    assert f'value="{data["name"]}"' in html


def test_it_refuses_create_to_viewers(viewer):
    token = csrf(viewer.client)
    response = viewer.client.post(
        "/functions/create", {"name": "nope", "handler": "cat"}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 403
    assert "New function" not in viewer.client.get("/functions/").content.decode()


def test_another_tenants_function_is_a_404_on_every_page(operator, outsider):
    fn = make_function(operator)
    add_invocations(fn, 1)
    inv = Invocation.objects.get(function=fn)
    for path in (
        f"/functions/{fn.function_id}/",
        f"/functions/{fn.function_id}/invoke",
        f"/functions/{fn.function_id}/invocations/",
        f"/functions/{fn.function_id}/invocations/{inv.invocation_id}",
        f"/functions/{fn.function_id}/versions",
        f"/functions/{fn.function_id}/edit",
        f"/functions/{fn.function_id}/live",
    ):
        assert outsider.client.get(path).status_code == 404, path
    token = csrf(outsider.client)
    for action in ("deploy", "pause", "resume", "delete", "rollback", "invoke", "edit"):
        response = outsider.client.post(
            f"/functions/{fn.function_id}/{action}", {"version": "1"}, HTTP_X_CSRFTOKEN=token
        )
        assert response.status_code == 404, action
    assert fn.name not in outsider.client.get("/functions/").content.decode()
    fn.refresh_from_db()
    assert fn.state == FunctionState.PENDING and fn.deleted_at is None


def test_viewers_read_but_do_not_act(operator, viewer):
    fn = make_function(operator)
    page = viewer.client.get(f"/functions/{fn.function_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "operators deploy, pause and invoke it" in html
    assert re.search(r'data-action="deploy"\s+disabled', html)
    token = csrf(viewer.client)
    for action in ("deploy", "pause", "delete", "invoke"):
        response = viewer.client.post(
            f"/functions/{fn.function_id}/{action}", {"payload": "x"}, HTTP_X_CSRFTOKEN=token
        )
        assert response.status_code == 403, action
    invoke = viewer.client.get(f"/functions/{fn.function_id}/invoke").content.decode()
    assert "operators invoke it" in invoke and 'id="invoke-form"' not in invoke


def test_deploy_from_the_page_queues_the_operation_and_shows_it(operator):
    fn = make_function(operator)
    token = csrf(operator.client)
    response = operator.client.post(
        f"/functions/{fn.function_id}/deploy", HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    op = Operation.objects.get(target_type="function", target_id=fn.function_id)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="function-actions"')
    assert op.operation_id in html and "every 1s" in html
    fn.refresh_from_db()
    assert fn.state == FunctionState.DEPLOYING
    # Without htmx: a redirect to the page naming the operation.
    again = operator.client.post(f"/functions/{fn.function_id}/pause", HTTP_X_CSRFTOKEN=token)
    assert again.status_code == 302
    fn.refresh_from_db()
    assert fn.state == FunctionState.PAUSED


def test_the_overview_shows_the_spec_and_the_pool(operator):
    fn = make_function(operator, description="echoes", environment={"SECRET": "v"})
    html = operator.client.get(f"/functions/{fn.function_id}/").content.decode()
    assert "echoes" in html and "SECRET" in html and "deploy the function to warm" in html
    assert f'data-function-id="{fn.function_id}"' in html
    assert f"function-changed-{fn.function_id} from:body" in html


def test_invocations_page_by_keyset_with_a_status_filter(operator):
    fn = make_function(operator)
    add_invocations(fn, INVOCATIONS_PAGE + 20)
    add_invocations(fn, 3, status="failed")
    first = operator.client.get(f"/functions/{fn.function_id}/invocations/").content.decode()
    ids = re.findall(r'id="invocation-(inv_[^"]+)"', first)
    newest = list(Invocation.objects.filter(function=fn).order_by("-id"))
    assert ids == [i.invocation_id for i in newest[:INVOCATIONS_PAGE]]
    older = re.search(r"before=(\d+)", first)
    assert older is not None
    second = operator.client.get(
        f"/functions/{fn.function_id}/invocations/?before={older.group(1)}"
    ).content.decode()
    ids2 = re.findall(r'id="invocation-(inv_[^"]+)"', second)
    assert ids2 == [i.invocation_id for i in newest[INVOCATIONS_PAGE:]]
    assert "after=" in second and "before=" not in second
    # The live refresh is only on the newest page.
    assert "function-changed-" in first.split('id="invocation-rows"')[1][:400]
    assert "hx-trigger" not in second.split('id="invocation-rows"')[1][:200]
    failed = operator.client.get(
        f"/functions/{fn.function_id}/invocations/?status=failed"
    ).content.decode()
    assert len(re.findall(r'data-status="failed"', failed)) == 3
    assert 'data-status="success"' not in failed


def test_an_invocations_page_costs_the_same_queries_for_any_table_size(operator):
    fn = make_function(operator)
    add_invocations(fn, INVOCATIONS_PAGE + 1)
    url = f"/functions/{fn.function_id}/invocations/"

    def fewest(page_url: str) -> CaptureQueriesContext:
        # Twice, the fewer counted: a page view may also do the session's occasional
        # housekeeping (idle touch, sweeps), which is not what this test is about.
        runs = []
        for _ in range(2):
            with CaptureQueriesContext(connection) as ctx:
                operator.client.get(page_url)
            runs.append(ctx)
        return min(runs, key=lambda c: len(c.captured_queries))

    small = fewest(url)
    add_invocations(fn, 2000)
    last = Invocation.objects.filter(function=fn).order_by("id")[INVOCATIONS_PAGE * 3].id
    big = fewest(url + f"?before={last}")
    assert len(big.captured_queries) <= len(small.captured_queries) + 1
    assert not any("OFFSET" in q["sql"].upper() for q in big.captured_queries)
    assert not any(
        "COUNT(" in q["sql"].upper() for q in big.captured_queries if "invocation" in q["sql"]
    )


def test_an_invocations_detail_shows_the_full_record(operator):
    fn = make_function(operator)
    other = make_function(operator, "second")
    add_invocations(fn, 1, status="failed")
    inv = Invocation.objects.get(function=fn)
    inv.stderr = "boom on stderr"
    inv.error_message = "the handler exited 1"
    inv.save()
    html = operator.client.get(
        f"/functions/{fn.function_id}/invocations/{inv.invocation_id}"
    ).content.decode()
    assert "boom on stderr" in html and "out-0" in html and "the handler exited 1" in html
    assert "inv-failed" in html
    wrong = operator.client.get(f"/functions/{other.function_id}/invocations/{inv.invocation_id}")
    assert wrong.status_code == 404


def test_versions_diff_two_specs_and_roll_back(operator):
    fn = make_function(operator, timeout_seconds=30)
    actor = actor_for(_Req(operator))
    fn = actions.update_function(
        actor, fn, validate_spec({"name": fn.name, "handler": "cat -n", "timeout_seconds": 60})
    )
    assert fn.current_version == 2
    html = operator.client.get(f"/functions/{fn.function_id}/versions").content.decode()
    assert "v1" in html and "v2" in html
    changed = re.findall(r'<tr class="is-changed">\s*<th scope="row"><code>(\w+)</code>', html)
    assert changed == ["handler", "timeout_seconds"]
    assert "data-confirm=" in html and 'id="confirm-dialog"' in html
    token = csrf(operator.client)
    response = operator.client.post(
        f"/functions/{fn.function_id}/rollback", {"version": "1"}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 302
    fn.refresh_from_db()
    assert fn.current_version == 1 and fn.handler == "cat"
    bad = operator.client.post(
        f"/functions/{fn.function_id}/rollback",
        {"version": "9"},
        HTTP_X_CSRFTOKEN=token,
        follow=True,
    )
    assert "has no version 9" in bad.content.decode()


def test_spec_diff_marks_changed_keys():
    rows = spec_diff({"handler": "cat", "environment": {}}, {"handler": "wc", "environment": {}})
    assert {r["key"] for r in rows if r["changed"]} == {"handler"}


def test_the_header_search_finds_a_function_by_name(operator, outsider):
    fn = make_function(operator, "searchable")
    found = operator.client.get("/containers/resolve?q=searchable")
    assert found.status_code == 302 and found["Location"] == f"/functions/{fn.function_id}/"
    # Another tenant's function name is not found (the filtered container list instead).
    missed = outsider.client.get("/containers/resolve?q=searchable")
    assert missed["Location"].startswith("/containers/?")


def test_a_pool_containers_labels_name_its_function():
    labels = {LABEL_FUNCTION: "fn_abc", LABEL_FUNCTION_NAME: "hello", LABEL_FUNCTION_VERSION: "2"}
    assert served_function(labels) == {"function_id": "fn_abc", "name": "hello", "version": 2}
    assert served_function({LABEL_FUNCTION: "fn_x"}) == {
        "function_id": "fn_x",
        "name": "fn_x",
        "version": None,
    }
    assert served_function({"other": "x"}) is None and served_function(None) is None


def _list_queries(person: Any) -> int:
    # The shell's health badge is cached for a few seconds; a refresh falling inside one count
    # and not the other would count the health checks' queries, not the list's.
    health_checks.summary(force=True)
    with CaptureQueriesContext(connection) as queries:
        assert person.client.get("/containers/").status_code == 200
    return len(queries)


def test_the_container_list_names_a_pool_containers_function(operator, monkeypatch):
    monkeypatch.setattr(health_checks, "BADGE_TTL_SECONDS", 3600.0)
    plain = operator.json("POST", "/api/containers", {"name": "plainbox", "image": "quilt/base"})
    assert plain.status_code in (200, 201), plain.content
    first = make_function(operator, "listed", min_instances=1, max_instances=1)
    deploy(operator, first)
    (pc,) = PoolContainer.objects.filter(function=first)
    items = {c["container_id"]: c for c in operator.api.get("/api/containers").json()["containers"]}
    assert items[pc.container_id]["function"] == {
        "function_id": first.function_id,
        "name": "listed",
        "version": 1,
    }
    assert items[plain.json()["container_id"]]["function"] is None
    html = operator.client.get("/containers/").content.decode()
    pill = re.search(r'<a class="fn-pill" href="([^"]+)"[^>]*>(.*?)</a>', html, re.S)
    assert pill is not None and pill.group(1) == f"/functions/{first.function_id}/"
    assert "listed" in pill.group(2) and "v1" in pill.group(2)
    assert html.count('class="fn-pill"') == 1  # the plain container has none
    # One more pool container costs the list page no query.
    before = _list_queries(operator)
    second = make_function(operator, "listed2", min_instances=1, max_instances=1)
    deploy(operator, second)
    assert _list_queries(operator) == before
    assert operator.client.get("/containers/").content.decode().count('class="fn-pill"') == 2


def test_delete_from_the_page(operator):
    fn = make_function(operator)
    token = csrf(operator.client)
    response = operator.client.post(f"/functions/{fn.function_id}/delete", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 302 and response["Location"] == "/functions/"
    assert operator.client.get(f"/functions/{fn.function_id}/").status_code == 404


def test_invoke_from_the_page_shows_the_result_inline(operator):
    fn = make_function(operator, "pageinvoke", handler='cat; echo " err" >&2', max_instances=2)
    deploy(operator, fn)
    token = csrf(operator.client)
    url = f"/functions/{fn.function_id}/invoke"
    response = operator.client.post(
        url, {"payload": "hello page"}, HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="invoke-result"')
    assert re.search(r'id="invoke-stdout"[^>]*>hello page</pre>', html)
    assert "err" in html and "exit 0" in html and "cold start" in html
    inv = Invocation.objects.get(function=fn)
    assert inv.invocation_id in html and inv.cold_start
    # The second call finds the warm container; a bad timeout is an error of the form's field.
    warm = operator.client.post(url, {"payload": "x"}, HTTP_X_CSRFTOKEN=token).content.decode()
    assert "warm-badge" in warm
    bad = operator.client.post(url, {"timeout_seconds": "0"}, HTTP_X_CSRFTOKEN=token)
    assert bad.status_code == 422 and "Timeout (s):" in bad.content.decode()
    # The pool container's page names the function it serves.
    container_id = Invocation.objects.filter(function=fn).first().container_id
    page = operator.client.get(f"/containers/{container_id}/").content.decode()
    assert "Serves function" in page and f'href="/functions/{fn.function_id}/"' in page


def test_invoking_a_paused_function_says_so_in_the_form(operator):
    fn = make_function(operator, "pausedpage")
    actions.pause_function(actor_for(_Req(operator)), fn)
    token = csrf(operator.client)
    response = operator.client.post(
        f"/functions/{fn.function_id}/invoke", {"payload": "x"}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 422
    assert "paused" in response.content.decode()
    assert not Invocation.objects.filter(function=fn).exists()


def edit_data(fn: Function, **changes: Any) -> dict[str, str]:
    """The "New version" form as the browser posts it, prefilled, with `changes` typed over."""
    data = {**initial_for(fn), **changes}
    return {
        key: ("on" if value is True else "" if value is None else str(value))
        for key, value in data.items()
        if value is not False
    }


def test_the_new_version_form_is_prefilled_and_saves_a_version(operator):
    fn = make_function(
        operator, "editme", description="echoes", timeout_seconds=45, environment={"GREETING": "hi"}
    )
    overview = operator.client.get(f"/functions/{fn.function_id}/").content.decode()
    assert f'href="/functions/{fn.function_id}/edit"' in overview
    page = operator.client.get(f"/functions/{fn.function_id}/edit")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="timeout_seconds" value="45"' in html and 'value="editme"' in html
    assert ">GREETING=hi</textarea>" in html and ">cat</textarea>" in html
    assert "Save as v2" in html
    token = csrf(operator.client)
    response = operator.client.post(
        f"/functions/{fn.function_id}/edit",
        edit_data(fn, handler="cat -n", timeout_seconds="60"),
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 302
    assert response["Location"] == f"/functions/{fn.function_id}/versions?a=1&b=2"
    fn.refresh_from_db()
    assert fn.current_version == 2 and fn.handler == "cat -n" and fn.timeout_seconds == 60
    assert fn.environment == {"GREETING": "hi"} and fn.description == "echoes"
    versions = operator.client.get(response["Location"]).content.decode()
    assert "Version 2 saved and current." in versions
    assert re.search(r"v2 <span class=\"badge badge-ok\">current</span>", versions)
    changed = re.findall(r'<tr class="is-changed">\s*<th scope="row"><code>(\w+)</code>', versions)
    assert changed == ["handler", "timeout_seconds"]


@pytest.mark.parametrize(
    ("changes", "label", "words"),
    [
        ({"memory_limit_mb": "128"}, "Memory (MiB)", "256"),
        ({"max_instances": "0"}, "Maximum instances", ""),
        ({"handler": ""}, "Handler", "required"),
        ({"name": "taken"}, "Name", "already exists"),
        ({"environment": "NOEQUALS"}, "Environment", "KEY=VALUE"),
        ({}, None, "nothing changed"),
    ],
)
def test_the_new_version_form_shows_errors_in_its_own_words(operator, changes, label, words):
    make_function(operator, "taken")
    fn = make_function(operator, "versioned")
    token = csrf(operator.client)
    response = operator.client.post(
        f"/functions/{fn.function_id}/edit", edit_data(fn, **changes), HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 422
    html = response.content.decode()
    errors = re.search(r'id="fn-edit-errors">(.*?)</div>', html, re.S)
    assert errors is not None and "The new version was not saved." in errors.group(1)
    if label is not None:
        assert f"<li>{label}:" in errors.group(1)
    assert words in errors.group(1)
    assert "_instances" not in errors.group(1) and "memory_limit_mb" not in errors.group(1)
    fn.refresh_from_db()
    assert fn.current_version == 1 and fn.versions.count() == 1
    # What was typed stays in the form.
    for key, value in changes.items():
        if value and key != "environment":
            assert f'value="{value}"' in html


def test_viewers_cannot_open_the_new_version_form(operator, viewer):
    fn = make_function(operator)
    assert viewer.client.get(f"/functions/{fn.function_id}/edit").status_code == 403
    token = csrf(viewer.client)
    response = viewer.client.post(
        f"/functions/{fn.function_id}/edit", edit_data(fn, handler="wc"), HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 403
    assert "/edit" not in viewer.client.get(f"/functions/{fn.function_id}/").content.decode()
    fn.refresh_from_db()
    assert fn.current_version == 1


def test_a_new_version_from_the_form_rolls_the_deployed_pool(operator):
    fn = make_function(operator, "rollform", min_instances=1, max_instances=2)
    deploy(operator, fn)
    fn.refresh_from_db()
    assert fn.state == FunctionState.ACTIVE
    token = csrf(operator.client)
    response = operator.client.post(
        f"/functions/{fn.function_id}/edit",
        edit_data(fn, handler="cat; echo v2"),
        HTTP_X_CSRFTOKEN=token,
        follow=True,
    )
    assert "The pool rolls to it" in response.content.decode()
    reconcile_pools()
    live = PoolContainer.objects.filter(function=fn)
    assert {pc.version for pc in live} == {2}
    assert {c.labels[LABEL_FUNCTION_VERSION] for c in engine_pool(fn)} == {"2"}


def test_operations_name_a_deploy_by_its_function(operator):
    fn = make_function(operator, "namedeploy")
    token = csrf(operator.client)
    operator.client.post(f"/functions/{fn.function_id}/deploy", HTTP_X_CSRFTOKEN=token)
    op = Operation.objects.get(target_type="function", target_id=fn.function_id)
    link = f'<a class="mono" href="/functions/{fn.function_id}/">namedeploy</a>'
    tray = operator.client.get("/operations/tray").content.decode()
    assert re.search(rf'id="tray-target-{op.operation_id}">namedeploy<', tray)
    assert "Deploy function" in tray
    listing = operator.client.get("/operations/").content.decode()
    assert link in listing and fn.function_id not in listing.replace(
        f"/functions/{fn.function_id}/", ""
    )
    detail = operator.client.get(f"/operations/{op.operation_id}").content.decode()
    assert "<h1>Deploy function · namedeploy</h1>" in detail and link in detail


def test_the_versions_diff_hides_environment_values_from_viewers(operator, viewer):
    fn = make_function(operator, environment={"TOKEN": "s3cret-one", "SAME": "kept-value"})
    actor = actor_for(_Req(operator))
    actions.update_function(
        actor,
        fn,
        validate_spec(
            {
                "name": fn.name,
                "handler": "cat",
                "environment": {"TOKEN": "s3cret-two", "SAME": "kept-value"},
            }
        ),
    )
    url = f"/functions/{fn.function_id}/versions"
    html = viewer.client.get(url).content.decode()
    assert "s3cret-one" not in html and "s3cret-two" not in html and "kept-value" not in html
    changed = re.findall(r'<tr class="is-changed">\s*<th scope="row"><code>(\w+)</code>', html)
    assert changed == ["environment"]
    assert "TOKEN" in html and "(changed)" in html
    own = operator.client.get(url).content.decode()
    assert "s3cret-one" in own and "s3cret-two" in own
