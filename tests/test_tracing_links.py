"""A step run again later (a retry, a lost worker's step) starts a trace of its own,
linked to the attempt before, rather than growing the request's trace for hours."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from cognitionos.db.models.workflows import StepExecution
from cognitionos.observability.tracing import continued_span
from cognitionos.services.workflows.transitions import Effects, requeue


@pytest.fixture
def tracer() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def _step() -> StepExecution:
    return StepExecution(id=uuid.uuid4(), dispatch_seq=1, trace_context=None)


def test_a_retry_is_a_new_trace_linked_to_the_failed_attempt(
    tracer: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer_, exporter = tracer
    step, effects = _step(), Effects()
    with tracer_.start_as_current_span("run_step LLM") as failed:
        requeue(step, effects, defer=2.0)  # what fail_step does while attempts remain
    (dispatch,) = effects.dispatch
    assert dispatch.trace == step.trace_context  # kept for the reconciler
    with continued_span(tracer_, "run_step", dispatch.trace):
        pass
    retry = exporter.get_finished_spans()[-1]
    attempt = failed.get_span_context()
    assert retry.parent is None
    assert retry.context.trace_id != attempt.trace_id
    assert [(link.context.trace_id, link.context.span_id) for link in retry.links] == [
        (attempt.trace_id, attempt.span_id)
    ]


def test_a_lost_workers_step_links_to_its_last_dispatch(
    tracer: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer_, exporter = tracer
    step, first = _step(), Effects()
    with tracer_.start_as_current_span("mutation executeWorkflow") as request:
        requeue(step, first)
    # The reconciler requeues outside any span: the link goes to the stored context.
    again = Effects()
    requeue(step, again)
    with continued_span(tracer_, "run_step", again.dispatch[0].trace):
        pass
    rerun = exporter.get_finished_spans()[-1]
    assert rerun.parent is None
    assert [link.context.span_id for link in rerun.links] == [request.get_span_context().span_id]


def test_a_redelivered_dispatch_continues_its_trace(
    tracer: tuple[Tracer, InMemorySpanExporter],
) -> None:
    """What the reconciler sends again for a lost job: the stored context, as a parent."""
    tracer_, exporter = tracer
    with tracer_.start_as_current_span("mutation executeWorkflow") as request:
        carrier = {"traceparent": _traceparent(request)}
    with continued_span(tracer_, "run_step", carrier):
        pass
    job = exporter.get_finished_spans()[-1]
    assert job.parent is not None
    assert job.parent.span_id == request.get_span_context().span_id
    assert job.context.trace_id == request.get_span_context().trace_id
    assert not job.links


def test_no_carrier_no_parent(tracer: tuple[Tracer, InMemorySpanExporter]) -> None:
    """A job from before tracing (or with none) is a root, never a child of whatever
    the worker's task happened to hold."""
    tracer_, exporter = tracer
    with tracer_.start_as_current_span("something else"), continued_span(tracer_, "run_step", None):
        pass
    job = next(s for s in exporter.get_finished_spans() if s.name == "run_step")
    assert job.parent is None


def _traceparent(span: object) -> str:
    context = span.get_span_context()  # type: ignore[attr-defined]
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-01"
