"""Requests made the way Quilt's TypeScript SDK makes them (issue #16, contract 2.17).

Written from reading the SDK's transport, not copied from it:
- src/core/url.ts `applyPathParams`: every `{param}` is `encodeURIComponent`-ed, so a volume
  path `nested/a.txt` travels as `nested%2Fa.txt` and `/hello.txt` as `%2Fhello.txt` (Daphne and
  Django's test client both decode that once: the route sees `…/files//hello.txt`).
- src/core/url.ts `appendQueryParams`: undefined and null values are left out, booleans and
  numbers become `String(value)` ("true"/"false"), through `URLSearchParams`.
- src/core/http.ts `requestResponse`/`serializeBody`: `X-Api-Key` for API-key auth, and
  `Content-Type: application/json` with `JSON.stringify(body)` only when there is a body.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlencode

PATH_TOKEN = re.compile(r"\{([^}]+)\}")


def encode_uri_component(value: Any) -> str:
    # encodeURIComponent leaves A-Z a-z 0-9 - _ . ! ~ * ' ( ) as they are.
    return quote(str(value), safe="-_.!~*'()")


def build_url(
    template: str, path_params: dict[str, Any] | None, query: dict[str, Any] | None
) -> str:
    path = PATH_TOKEN.sub(lambda m: encode_uri_component((path_params or {})[m[1]]), template)
    pairs = []
    for key, value in (query or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        pairs.append((key, str(value)))
    return f"{path}?{urlencode(pairs)}" if pairs else path


def sdk_call(
    person: Any,
    method: str,
    template: str,
    *,
    path_params: dict[str, Any] | None = None,
    query: dict[str, Any] | None = None,
    body: Any = None,
) -> Any:
    """One SDK request through `person`'s API-key client (it sends `X-Api-Key`)."""
    url = build_url(template, path_params, query)
    if body is None:
        return person.api.generic(method.upper(), url)
    data = json.dumps(body, separators=(",", ":"))
    return person.api.generic(method.upper(), url, data, content_type="application/json")
