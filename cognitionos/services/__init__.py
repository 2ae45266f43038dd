"""Domain logic. Never imports strawberry: GraphQL sits on top of this layer."""

__all__: list[str] = []
