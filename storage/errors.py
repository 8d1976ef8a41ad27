"""Errors of the storage layer; the HTTP edge translates them once (503, 404, 409)."""

from __future__ import annotations

__all__ = ["Conflict", "NotFound", "StorageError", "StorageUnavailable"]


class StorageError(Exception):
    """Root of storage errors."""


class StorageUnavailable(StorageError):
    """A backing service did not answer in time or refused; the caller may retry later."""


class NotFound(StorageError):
    """The record does not exist (or is hidden)."""


class Conflict(StorageError):
    """A uniqueness claim lost (username or email taken)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is already taken")
        self.field = field
