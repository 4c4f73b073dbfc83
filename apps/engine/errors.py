"""The engine seam's own errors: nothing outside apps/engine/ sees a docker exception."""


class EngineError(Exception):
    """Base of every error the engine seam raises. `engine` names the engine whose call failed
    (set by the client that raised it; None where no client did)."""

    engine: str | None = None


class EngineUnavailable(EngineError):
    """The Docker engine did not answer (down, socket missing, timed out)."""


class NotFound(EngineError):
    """No such container, image, volume, network or exec."""


class Conflict(EngineError):
    """The engine refused because of the object's state or a name already taken."""


class BadRequest(EngineError):
    """The engine refused the request as invalid (bad reference, bad option, start failure)."""
