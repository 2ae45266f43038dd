"""Live subscriptions: channel names and the Subscription classes (over ``cognitionos.pubsub``)."""

from __future__ import annotations

from strawberry.tools import merge_types

from cognitionos.subscriptions.executions import ExecutionSubscription
from cognitionos.subscriptions.feeds import FeedSubscription
from cognitionos.subscriptions.step_output import StepOutputSubscription

__all__ = ["Subscription"]

Subscription = merge_types(
    "Subscription", (ExecutionSubscription, FeedSubscription, StepOutputSubscription)
)
