"""The request types page views are written against, defined once.

`HtmxHttpRequest` is a request that went through django-htmx's middleware (`request.htmx`) and
`RequestIdMiddleware` (`request.request_id`). `AuthedRequest` is one that also got past
`LoginRequiredMiddleware`, so its `user` is a signed-in user, never the anonymous one.
Both are for type checking only: at run time every request is Django's own `HttpRequest`.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
    request_id: str


class AuthedRequest(HtmxHttpRequest):
    user: User
