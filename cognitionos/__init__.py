"""CognitionOS: a real-time AI orchestration server."""

__all__: list[str] = []
