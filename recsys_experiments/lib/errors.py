"""Domain errors raised by services and selectors; each edge (API, admin, commands) maps them
to its own form: 400/404/409, a form error, or one CommandError line."""

from __future__ import annotations


class DomainError(Exception):
    """Base class; `message` is one readable sentence."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def describe_field_errors(errors: dict[str, list[str]]) -> str:
    """{field: [reasons]} as one line: `key: too short; traffic: must be 0-1`."""
    return "; ".join(
        f"{field}: {reason}" for field, reasons in errors.items() for reason in reasons
    )


class InvalidInput(DomainError):
    """Bad input. `errors` maps a field path (`variants[1].weight`) to its reasons."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__(describe_field_errors(errors))


class NotFound(DomainError):
    pass


class IllegalTransition(DomainError):
    """The request is valid but conflicts with the experiment's current state (HTTP 409)."""
