from typing import Any


def post_form(person: Any, path: str, data: dict[str, Any], prime: str = "/accounts/keys/") -> Any:
    """POST a form the way the browser does: with the CSRF token from a page it loaded first."""
    person.client.get(prime)
    token = person.client.cookies["csrftoken"].value
    return person.client.post(path, {**data, "csrfmiddlewaretoken": token})
