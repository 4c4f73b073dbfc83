"""`GET /api/openapi.json` and the page that renders it, `GET /api/docs` (contract 2.15).

Both need a signed-in user like every route (apps.core.middleware); the document names routes and
fields only, no tenant's data, so every role may read it. The page is server-rendered from the
same document: no script, so the CSP (apps.core.csp) has nothing to allow.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.core import openapi, schemas
from apps.core.api import api_route, check_query
from apps.core.apidoc import Media, Op
from apps.core.openapi_page import page_context

DOCS = Op(
    summary="This API's description, rendered for people",
    query=schemas.NoQuery,
    responses={200: Media("text/html", "An HTML page: tags, operations, parameters, bodies.")},
    tag="api",
)


@api_route("GET", doc=schemas.OPENAPI)
def openapi_json(request: HttpRequest) -> HttpResponse:
    check_query(request, ())
    return HttpResponse(openapi.document_bytes(), content_type="application/json")


@api_route("GET", doc=DOCS)
def docs(request: HttpRequest) -> HttpResponse:
    check_query(request, ())
    document: dict[str, Any] = orjson.loads(openapi.document_bytes())
    return render(request, "core/api_docs.html", {"nav": "guide", **page_context(document)})
