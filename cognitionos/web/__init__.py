"""HTTP surface: GraphQL over HTTP, health, metrics, request middleware."""

__all__: list[str] = []
