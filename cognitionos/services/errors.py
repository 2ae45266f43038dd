"""The domain error tree, mapped to GraphQL ``extensions.code`` in one place.

CognitionError
├── Unauthenticated   UNAUTHENTICATED
├── Forbidden         FORBIDDEN
├── NotFound          NOT_FOUND
├── BadUserInput      BAD_USER_INPUT   (names the offending ``field``)
├── Conflict          CONFLICT
├── RateLimited       RATE_LIMITED     (says ``retryAfter`` seconds)
└── BudgetExceeded    BUDGET_EXCEEDED
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BadUserInput",
    "BudgetExceeded",
    "CognitionError",
    "Conflict",
    "Forbidden",
    "LLMUnavailable",
    "NotFound",
    "RateLimited",
    "Unauthenticated",
]


class CognitionError(Exception):
    """An error whose message is safe to show the client."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: dict[str, Any] = {k: v for k, v in extensions.items() if v is not None}

    def as_extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self.extensions}


class Unauthenticated(CognitionError):
    code = "UNAUTHENTICATED"


class Forbidden(CognitionError):
    code = "FORBIDDEN"


class NotFound(CognitionError):
    code = "NOT_FOUND"


class BadUserInput(CognitionError):
    code = "BAD_USER_INPUT"

    def __init__(self, message: str, *, field: str | None = None, **extensions: Any) -> None:
        super().__init__(message, field=field, **extensions)
        self.field = field


class Conflict(CognitionError):
    code = "CONFLICT"


class RateLimited(CognitionError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: float, **extensions: Any) -> None:
        super().__init__(message, retryAfter=max(1, round(retry_after)), **extensions)
        self.retry_after = retry_after


class BudgetExceeded(CognitionError):
    code = "BUDGET_EXCEEDED"


class LLMUnavailable(CognitionError):
    """No provider is configured (``transient=False``), or every provider in the chain
    failed (``transient=True``: a later retry may succeed)."""

    code = "LLM_UNAVAILABLE"

    def __init__(self, message: str, *, transient: bool = False, **extensions: Any) -> None:
        super().__init__(message, **extensions)
        self.transient = transient
