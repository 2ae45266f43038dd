"""HTTP surface: GraphQL over HTTP, health, metrics, request middleware."""
