"""Image list, inspect (has_shell), history and delete (admin; IN_USE; PROTECTED)."""

from __future__ import annotations

import secrets

import pytest
from django.conf import settings

from apps.accounts.models import AuditEntry
from apps.engine.client import engine
from apps.engine.types import ContainerSpec

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def labels() -> dict[str, str]:
    return {"io.quiltweb.instance": settings.QUILTWEB_INSTANCE}


def tagged(repository: str, tag: str = "v1", extra: dict[str, str] | None = None) -> str:
    """A new tag of quilt/base with the test label (a commit, so it is its own image)."""
    eng = engine()
    cid = eng.create_container(
        ContainerSpec(
            docker_name=f"qwt-{secrets.token_hex(6)}",
            image="quilt/base",
            labels=labels(),
            network="none",
        )
    )
    eng.commit(cid, repository, tag, pause=False, labels={**labels(), **(extra or {})})
    eng.remove(cid, force=True)
    return f"{repository}:{tag}"


def test_it_lists_one_entry_per_tag_and_hides_snapshots(viewer, real_engine):
    ref = tagged("quilt/list-test")
    engine().tag_image(ref, "quilt/list-test", "second")
    # Labelled as a snapshot commit labels it: the viewer's tenant's (1.6).
    snap = tagged(
        "quiltweb-snapshot",
        f"snap_{secrets.token_hex(12)}",
        {"io.quiltweb.tenant": viewer.tenant.slug},
    )
    images = viewer.json("GET", "/api/oci/images").json()["images"]
    refs = [i["reference"] for i in images]
    assert "quilt/base:latest" in refs
    assert ref in refs and "quilt/list-test:second" in refs
    assert snap not in refs
    entry = next(i for i in images if i["reference"] == ref)
    assert entry["repository"] == "quilt/list-test"
    assert entry["tag"] == "v1"
    assert entry["image_id"].startswith("sha256:")
    assert entry["size_bytes"] > 0
    assert entry["created_at"].endswith("Z")
    with_snaps = viewer.json("GET", "/api/oci/images?include_snapshots=true").json()["images"]
    assert snap in [i["reference"] for i in with_snaps]
    assert viewer.json("GET", "/api/oci/images?include_snapshots=maybe").status_code == 422
    assert viewer.json("GET", "/api/oci/images?bogus=1").status_code == 422


def test_it_inspects_an_image_with_has_shell(viewer, real_engine):
    body = viewer.json("GET", "/api/oci/images/inspect?reference=quilt/base").json()
    assert body["reference"] == "quilt/base:latest"
    assert "quilt/base:latest" in body["repo_tags"]
    assert body["has_shell"] is True
    assert body["os"] == "linux"
    assert body["config"]["working_dir"] == "/root"
    assert body["config"]["cmd"][0] == "/bin/sh"
    assert len(body["layers"]) >= 1
    assert body["size_bytes"] > 0


def test_it_reports_has_shell_false_for_an_image_without_sh(viewer, real_engine):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    label = f'LABEL io.quiltweb.instance="{settings.QUILTWEB_INSTANCE}"'
    engine().import_image(buffer.getvalue(), "quilt/noshell", "v1", [label, 'CMD ["/nothing"]'])
    body = viewer.json("GET", "/api/oci/images/inspect?reference=quilt/noshell:v1").json()
    assert body["has_shell"] is False


def test_it_shows_history(viewer, real_engine):
    ref = tagged("quilt/history-test")
    history = viewer.json("GET", f"/api/oci/images/history?reference={ref}").json()["history"]
    assert len(history) >= 2
    assert set(history[0]) == {"image_id", "created_at", "created_by", "size_bytes", "comment"}


def test_it_answers_404_for_unknown_references_and_422_for_bad_ones(viewer, real_engine):
    missing = viewer.json("GET", "/api/oci/images/inspect?reference=quilt/never-there:v9")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "NOT_FOUND"
    assert (
        viewer.json("GET", "/api/oci/images/history?reference=quilt/never-there").status_code == 404
    )
    assert viewer.json("GET", "/api/oci/images/inspect?reference=Bad Ref").status_code == 422
    assert viewer.json("GET", "/api/oci/images/inspect").status_code == 422


def test_it_deletes_an_image_as_admin(admin, real_engine):
    ref = tagged("quilt/delete-test")
    response = admin.json("DELETE", f"/api/oci/images?reference={ref}")
    assert response.status_code == 200, response.content
    assert response.json() == {"reference": ref, "deleted": True}
    assert not engine().image_exists(ref)
    assert AuditEntry.objects.filter(action="image.deleted", target_id=ref).exists()


def test_it_refuses_deletes_from_non_admins(operator, real_engine):
    ref = tagged("quilt/operator-test")
    response = operator.json("DELETE", f"/api/oci/images?reference={ref}")
    assert response.status_code == 403
    assert engine().image_exists(ref)


def test_it_refuses_to_delete_protected_images(admin, real_engine):
    base = admin.json("DELETE", "/api/oci/images?reference=quilt/base")
    assert base.status_code == 409
    assert base.json()["error_code"] == "PROTECTED"
    snap = tagged("quiltweb-snapshot", f"snap_{secrets.token_hex(12)}")
    response = admin.json("DELETE", f"/api/oci/images?reference={snap}")
    assert response.status_code == 409
    assert response.json()["error_code"] == "PROTECTED"
    assert engine().image_exists("quilt/base:latest")


def test_it_refuses_to_delete_an_image_a_container_uses(admin, real_engine):
    ref = tagged("quilt/used-test")
    created = admin.json("POST", "/api/containers", {"name": "image-user", "image": ref})
    assert created.status_code == 201, created.content
    cid = created.json()["container_id"]
    response = admin.json("DELETE", f"/api/oci/images?reference={ref}")
    assert response.status_code == 409
    assert response.json()["error_code"] == "IN_USE"
    assert response.json()["details"]["container_ids"] == [cid]


def test_it_untags_an_alias_nobody_created_a_container_from(admin, real_engine):
    ref = tagged("quilt/alias-test")
    engine().tag_image(ref, "quilt/alias-test", "alias")
    created = admin.json("POST", "/api/containers", {"name": "alias-user", "image": ref})
    assert created.status_code == 201, created.content
    assert (
        admin.json("DELETE", "/api/oci/images?reference=quilt/alias-test:alias").status_code == 200
    )
    used = admin.json("DELETE", f"/api/oci/images?reference={ref}")
    assert used.status_code == 409
    assert used.json()["error_code"] == "IN_USE"


def test_the_create_form_offers_neither_snapshot_nor_retained_images(real_engine):
    from apps.containers.forms import image_choices

    ref = tagged("quilt/choice-test")
    snap = tagged("quiltweb-snapshot", f"snap_{secrets.token_hex(12)}")
    kept = tagged("quiltweb-retained", f"snap_{secrets.token_hex(12)}")
    offered = {value for value, _ in image_choices()}
    assert ref in offered
    assert snap not in offered and kept not in offered
