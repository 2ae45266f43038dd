"""Permission classes: who may reach a field. They raise our domain errors,
so the client sees UNAUTHENTICATED or FORBIDDEN with a reason."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from graphql import GraphQLError
from strawberry import Info
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission
from strawberry.types.graphql import OperationType

from cognitionos.db.models.auth import Role
from cognitionos.services.errors import Forbidden

__all__ = [
    "IsAdmin",
    "IsAuthenticated",
    "IsMember",
    "IsUserSession",
    "IsViewer",
    "ReadOnlyCredentials",
]


class IsAuthenticated(BasePermission):
    message = "authentication required"

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.require_principal()
        return True


class _HasRole(BasePermission):
    role: ClassVar[Role]

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.require_principal().require(self.role)
        return True


class IsViewer(_HasRole):
    role = Role.VIEWER


class IsMember(_HasRole):
    role = Role.MEMBER


class IsAdmin(_HasRole):
    role = Role.ADMIN


class IsUserSession(BasePermission):
    """Only a user's own login, not an API key (keys cannot mint keys)."""

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.require_principal()
        if principal.api_key_id is not None:
            raise Forbidden("API keys cannot manage API keys; log in as the user")
        return True


class ReadOnlyCredentials(SchemaExtension):
    """A ``read`` API key never mutates: the whole operation is refused before it is
    validated or run, so no mutation, present or future, can forget the check."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context.context
        principal = context.principal
        if (
            principal is not None
            and not principal.can_write()
            and self.execution_context.operation_type is OperationType.MUTATION
        ):
            refusal = Forbidden(
                "this API key is read-only: mutations need a key with the write or admin scope",
                requiredScope="write",
            )
            # Errors set before validation replace it (strawberry skips its own run).
            self.execution_context.pre_execution_errors = [
                GraphQLError(refusal.message, original_error=refusal)
            ]
        yield
