"""Errors the services raise; callers (API, CLI, views) turn them into messages."""


class ServiceError(Exception):
    """Base: something the caller asked for cannot be done; ``str()`` says why."""


class NotFound(ServiceError):
    """The named customer, order, login or token does not exist."""


class Conflict(ServiceError):
    """The request collides with what exists (duplicate number, wrong state)."""


class Invalid(ServiceError):
    """A value is not acceptable; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
