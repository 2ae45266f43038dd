"""GraphQL types per domain, the scalars, permissions and the schema's extensions.

The schema itself is assembled in ``cognitionos.web.schema``: resolvers and
subscriptions import these types, so this package imports neither.
"""

from __future__ import annotations

__all__: list[str] = []
