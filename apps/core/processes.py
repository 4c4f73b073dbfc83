"""Processes of this host, for rows that name the server process holding them."""

import os


def pid_alive(text: str) -> bool:
    """Whether the process with this pid (given as text, as rows store it) still runs here. A
    process of another user still counts: the signal is refused, but the pid exists."""
    if not text.isdigit():
        return False
    try:
        os.kill(int(text), 0)
    except PermissionError:
        return True
    except ProcessLookupError:
        return False
    return True
