"""Shim: the domain errors live in recsys_experiments/lib/errors.py."""

from recsys_experiments.lib.errors import (  # noqa: F401
    DomainError,
    IllegalTransition,
    InvalidInput,
    NotFound,
    describe_field_errors,
)
