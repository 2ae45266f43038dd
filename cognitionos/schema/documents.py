"""Parsed and validated documents, remembered by their text.

Parsing and validating a document costs more than running most operations, and clients
send the same few documents over and over. Both results depend only on the document's
text and the schema (whose limits are fixed when it is built), so the schema keeps a
bounded LRU of them. What depends on the request still runs every time: the read-only
key refusal and the NUL check (on literals and on variables), variable coercion,
authorization and rate limits. A document that fails to parse is not remembered.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from threading import Lock

from graphql import DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension

__all__ = ["CachedDocuments", "DocumentCache"]


@dataclass
class _Entry:
    document: DocumentNode
    # None until the document was validated once (it may be refused before that).
    errors: tuple[GraphQLError, ...] | None = None
    size: int = field(default=0)


class DocumentCache:
    """A bounded LRU: at most ``entries`` documents and ``chars`` characters of text
    (which bounds the syntax trees too: the token limit applies to each)."""

    def __init__(
        self, *, entries: int, chars: int = 4_000_000, max_tokens: int | None = None
    ) -> None:
        self.max_entries = entries
        self.max_chars = chars
        self.max_tokens = max_tokens  # the schema's token limit, for parses outside it
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._chars = 0
        self._lock = Lock()  # a schema may serve several threads (tests, sync execution)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, text: str) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(text)
            if entry is not None:
                self._entries.move_to_end(text)
            return entry

    def put(self, text: str, document: DocumentNode) -> _Entry:
        entry = _Entry(document, size=len(text))
        if self.max_entries <= 0 or entry.size > self.max_chars // 4:
            return entry  # not remembered; still usable for this request
        with self._lock:
            old = self._entries.pop(text, None)
            if old is not None:
                self._chars -= old.size
            self._entries[text] = entry
            self._chars += entry.size
            while len(self._entries) > self.max_entries or self._chars > self.max_chars:
                _, evicted = self._entries.popitem(last=False)
                self._chars -= evicted.size
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._chars = 0


class CachedDocuments(SchemaExtension):
    """Serves parsing and validation from the schema's ``DocumentCache``.

    Listed after every extension that may refuse an operation in ``on_validate``: a
    refusal set before validation is neither replaced nor remembered."""

    def __init__(self, *, cache: DocumentCache) -> None:
        self.cache = cache
        self.entry: _Entry | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        text = context.query
        if text is not None and context.graphql_document is None:
            self.entry = self.cache.get(text)
            if self.entry is not None:
                context.graphql_document = self.entry.document  # strawberry skips parsing
        yield
        if self.entry is None and text is not None and context.graphql_document is not None:
            self.entry = self.cache.put(text, context.graphql_document)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        entry = self.entry
        if entry is None or context.pre_execution_errors is not None:
            yield  # not cached, or refused already: nothing to reuse or remember
            return
        if entry.errors is not None:
            context.pre_execution_errors = list(entry.errors)  # strawberry skips validation
            yield
            return
        yield
        if context.pre_execution_errors is not None:
            entry.errors = tuple(context.pre_execution_errors)
