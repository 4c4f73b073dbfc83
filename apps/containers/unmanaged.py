"""Containers on the engine that QuiltWeb does not manage: listed, read-only, for admins only.

They have no tenant, so no one else may see them; the API keeps answering 404 for them (spec 1.6).
"""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.accounts.access import require_page
from apps.containers.models import LABEL_MANAGED
from apps.engine.client import engine


@require_GET
def unmanaged_list(request: HttpRequest) -> HttpResponse:
    require_page(request, "admin")
    items = [c for c in engine().list_containers() if c.labels.get(LABEL_MANAGED) != "true"]
    items.sort(key=lambda c: c.created_at.timestamp() if c.created_at else 0, reverse=True)
    page = Paginator(items, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "containers/unmanaged.html",
        {"nav": "containers", "page": page, "count": len(items)},
    )
