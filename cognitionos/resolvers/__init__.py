"""Root Query and Mutation, merged from one class per domain."""

from __future__ import annotations

from strawberry.tools import merge_types

from cognitionos.resolvers.agents import AgentMutation, AgentQuery
from cognitionos.resolvers.auth import AuthMutation, AuthQuery
from cognitionos.resolvers.health import HealthQuery
from cognitionos.resolvers.memory import MemoryMutation, MemoryQuery
from cognitionos.resolvers.notifications import NotificationMutation, NotificationQuery
from cognitionos.resolvers.search import SearchQuery
from cognitionos.resolvers.workflows import WorkflowMutation, WorkflowQuery

__all__ = ["Mutation", "Query"]

Query = merge_types(
    "Query",
    (
        AuthQuery,
        WorkflowQuery,
        AgentQuery,
        MemoryQuery,
        NotificationQuery,
        SearchQuery,
        HealthQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (AuthMutation, WorkflowMutation, AgentMutation, MemoryMutation, NotificationMutation),
)
