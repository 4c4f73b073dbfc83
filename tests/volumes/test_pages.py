"""The volumes pages: list with users and sizes, create form, detail with file browser, uploads."""

from __future__ import annotations

import io
import tarfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.volumes.models import Volume
from tests.volumes.ops import drive

pytestmark = [pytest.mark.engine, pytest.mark.django_db(transaction=True)]


def csrf(client) -> str:
    client.get("/volumes/")
    return client.cookies["csrftoken"].value


def test_it_lists_volumes_with_their_users_and_sizes(operator):
    operator.json("POST", "/api/volumes", {"name": "pagevol", "labels": {"team": "web"}})
    operator.json("POST", "/api/containers", {"name": "pageuser", "volumes": ["pagevol:/data"]})
    page = operator.client.get("/volumes/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "pagevol" in html and "pageuser" in html and "team=web" in html
    assert "/volumes/sizes?v=pagevol" in html
    pk = Volume.objects.get(name="pagevol").pk
    sizes = operator.client.get("/volumes/sizes?v=pagevol").content.decode()
    assert f'id="vol-size-{pk}"' in sizes and "hx-swap-oob" in sizes
    filtered = operator.client.get("/volumes/?q=nomatch").content.decode()
    assert "No volume matches" in filtered


def test_it_creates_a_volume_from_the_form_and_shows_errors_inline(operator):
    token = csrf(operator.client)
    bad = operator.client.post("/volumes/create", {"name": "help"}, HTTP_X_CSRFTOKEN=token)
    assert bad.status_code == 422
    assert "reserved" in bad.content.decode()
    ok = operator.client.post(
        "/volumes/create", {"name": "formvol", "labels": "a=b"}, HTTP_X_CSRFTOKEN=token
    )
    assert ok.status_code == 302
    assert ok["Location"] == "/volumes/formvol/"
    assert Volume.objects.get(name="formvol").labels == {"a": "b"}


def test_it_browses_uploads_downloads_and_deletes_files(operator):
    operator.json("POST", "/api/volumes", {"name": "browse"})
    token = csrf(operator.client)
    upload = SimpleUploadedFile("hello.txt", b"hello page")
    response = operator.client.post(
        "/volumes/browse/upload", {"path": "docs", "file": upload}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 302
    page = operator.client.get("/volumes/browse/?path=docs").content.decode()
    assert "hello.txt" in page and "/volumes/browse/download?path=docs/hello.txt" in page
    download = operator.client.get("/volumes/browse/download?path=docs/hello.txt")
    assert download.content == b"hello page"
    assert "attachment" in download["Content-Disposition"]
    gone = operator.client.post(
        "/volumes/browse/delete-file",
        {"path": "docs/hello.txt"},
        HTTP_X_CSRFTOKEN=token,
        HTTP_HX_REQUEST="true",
    )
    assert gone.status_code == 200
    assert "Deleted docs/hello.txt" in gone.content.decode()


def test_it_shows_traversal_errors_in_the_browser(operator):
    operator.json("POST", "/api/volumes", {"name": "trav"})
    page = operator.client.get("/volumes/trav/?path=../../etc").content.decode()
    assert "may not contain" in page


def test_it_extracts_an_uploaded_archive_as_an_operation(operator):
    operator.json("POST", "/api/volumes", {"name": "tarvol"})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("site/index.html")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"<h1/>"))
    token = csrf(operator.client)
    archive = SimpleUploadedFile("site.tar.gz", buffer.getvalue())
    response = operator.client.post(
        "/volumes/tarvol/upload-archive",
        {"path": "", "archive": archive, "strip_components": "1"},
        HTTP_X_CSRFTOKEN=token,
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Extracting site.tar.gz" in html
    from apps.operations.models import Operation

    op = drive(Operation.objects.get(kind="archive_upload").operation_id)
    assert op.status == "succeeded", op.error
    assert "index.html" in operator.client.get("/volumes/tarvol/").content.decode()


def test_it_disables_delete_while_attached_and_deletes_otherwise(operator):
    operator.json("POST", "/api/volumes", {"name": "held"})
    operator.json("POST", "/api/containers", {"name": "holder2", "volumes": ["held:/d"]})
    token = csrf(operator.client)
    assert "In use by 1 container" in operator.client.get("/volumes/held/").content.decode()
    refused = operator.client.post(
        "/volumes/held/delete", HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true"
    )
    assert refused.status_code == 200  # htmx swaps only 2xx; the error is in the fragment
    assert "mounted by 1 container" in refused.content.decode()
    operator.json("POST", "/api/volumes", {"name": "free"})
    ok = operator.client.post("/volumes/free/delete", HTTP_X_CSRFTOKEN=token)
    assert ok.status_code == 302


def test_it_renames_from_the_page(operator):
    operator.json("POST", "/api/volumes", {"name": "before"})
    token = csrf(operator.client)
    response = operator.client.post(
        "/volumes/before/rename", {"new_name": "after"}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 302
    assert response["Location"] == "/volumes/after/"


def test_it_hides_forms_from_viewers_and_volumes_from_outsiders(operator, viewer, outsider):
    operator.json("POST", "/api/volumes", {"name": "secret"})
    html = viewer.client.get("/volumes/secret/").content.decode()
    assert (
        "Upload file" not in html
        and "New volume" not in viewer.client.get("/volumes/").content.decode()
    )
    assert outsider.client.get("/volumes/secret/").status_code == 404
    assert "secret" not in outsider.client.get("/volumes/").content.decode()
    assert viewer.client.post("/volumes/secret/delete").status_code == 403


def test_it_shows_viewers_file_names_without_contents(operator, viewer, support):
    operator.json("POST", "/api/volumes", {"name": "notes"})
    operator.json("POST", "/api/volumes/notes/files", {"path": "secret.txt", "content": "c2VjcmV0"})
    html = viewer.client.get("/volumes/notes/").content.decode()
    assert "secret.txt" in html
    assert "/volumes/notes/download" not in html
    assert 'id="vol-no-content"' in html and "not contents" in html
    assert viewer.client.get("/volumes/notes/download?path=secret.txt").status_code == 403
    # Support still reads.
    html = support.client.get("/volumes/notes/").content.decode()
    assert "/volumes/notes/download?path=secret.txt" in html
    assert 'id="vol-no-content"' not in html
    assert support.client.get("/volumes/notes/download?path=secret.txt").content == b"secret"


def test_it_words_form_errors_with_the_forms_labels(operator):
    operator.json("POST", "/api/volumes", {"name": "wordsvol"})
    token = csrf(operator.client)
    bad = operator.client.post("/volumes/create", {"name": "-x"}, HTTP_X_CSRFTOKEN=token)
    html = bad.content.decode()
    assert bad.status_code == 422
    assert "Name must start with a letter or digit" in html and "^[a-zA-Z0-9]" not in html
    renamed = operator.client.post(
        "/volumes/wordsvol/rename", {"new_name": ""}, HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST="true"
    )
    assert "New name is required" in renamed.content.decode()
    assert "new_name is required" not in renamed.content.decode()


def test_it_uploads_several_files_in_one_post_and_says_which_failed(operator, monkeypatch):
    from apps.volumes import files

    monkeypatch.setattr(files, "MAX_WRITE_BYTES", 8)
    operator.json("POST", "/api/volumes", {"name": "multivol"})
    token = csrf(operator.client)
    response = operator.client.post(
        "/volumes/multivol/upload",
        {
            "path": "",
            "file": [
                SimpleUploadedFile("a.txt", b"one"),
                SimpleUploadedFile("big.bin", b"x" * 20),
                SimpleUploadedFile("b.txt", b"two"),
            ],
        },
        HTTP_X_CSRFTOKEN=token,
        follow=True,
    )
    html = response.content.decode()
    assert "Uploaded a.txt (3 bytes), b.txt (3 bytes)." in html
    assert "Not uploaded: big.bin: files over 16 MiB" in html
    assert operator.client.get("/volumes/multivol/download?path=b.txt").content == b"two"


def test_it_answers_a_scripted_upload_with_the_files_result_row(operator):
    operator.json("POST", "/api/volumes", {"name": "rowvol"})
    token = csrf(operator.client)
    ok = operator.client.post(
        "/volumes/rowvol/upload",
        {"path": "", "file": SimpleUploadedFile("row.txt", b"row")},
        HTTP_X_CSRFTOKEN=token,
        HTTP_X_UPLOAD_ROW="1",
    )
    assert ok.status_code == 200 and ok["X-Upload-Row"] == "1"
    assert (
        'class="upload-row is-ok"' in ok.content.decode()
        and "/row.txt, 3 bytes" in ok.content.decode()
    )
    bad = operator.client.post(
        "/volumes/rowvol/upload",
        {"path": "../x", "file": SimpleUploadedFile("row.txt", b"row")},
        HTTP_X_CSRFTOKEN=token,
        HTTP_X_UPLOAD_ROW="1",
    )
    assert bad.status_code == 422 and bad["X-Upload-Row"] == "1"
    assert "is-failed" in bad.content.decode() and "may not contain" in bad.content.decode()
