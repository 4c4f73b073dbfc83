"""A strict Content-Security-Policy on every HTML response (issue #15, finding 7).

Scripts come only from this origin: no inline script, no event-handler attributes, no eval
(htmx runs with `allowEval: false`, set in base.html's `htmx-config` meta). The dashboard's
JavaScript lives in static/js/ and hooks into the markup through data-* attributes.

JSON, event streams, downloads and static files are not documents a browser renders, so they
go out untouched; a view that sets its own policy keeps it. The one view that needs more
(the recording replay: asciinema-player's terminal is WebAssembly) says so with
`@allows_webassembly`, which adds 'wasm-unsafe-eval' to that page's script-src only. It lets
the page compile WebAssembly; JavaScript eval and inline scripts stay forbidden.
"""

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


def policy(request: HttpRequest, *, wasm: bool = False) -> str:
    """The policy for a page served to this request (`wasm`: may compile WebAssembly)."""
    # The terminal's websocket lives on this host. CSP3 lets 'self' match ws:/wss: on the same
    # host, but older Chromium releases do not, so the websocket origin is named explicitly.
    try:
        ws_origin = " " + ("wss://" if request.is_secure() else "ws://") + request.get_host()
    except DisallowedHost:
        # The 400 page for a Host not in ALLOWED_HOSTS still gets a policy; it opens no socket,
        # and a Host we refuse is not one to name.
        ws_origin = ""
    directives = [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'" if wasm else "script-src 'self'",
        # xterm.js writes its own <style> elements and style attributes (cell sizes, the theme),
        # and the server renders progress bars with `style="width: N%"`; a nonce or hash cannot
        # cover styles a library builds at run time. Inline styles cannot run code, so scripts
        # stay strict and styles take 'unsafe-inline'.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",  # the favicon is a data: SVG
        f"connect-src 'self'{ws_origin}",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def is_html(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip().lower() == "text/html"


def allows_webassembly(
    view: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse]:
    """The view's pages may compile WebAssembly; everything else in the policy is unchanged."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if HEADER not in response and is_html(response):
            response[HEADER] = policy(request, wasm=True)
        return response

    return wrapped


class ContentSecurityPolicyMiddleware:
    """Adds the policy to every text/html response that does not carry one already."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER not in response and is_html(response):
            response[HEADER] = policy(request)
        return response
