"""CognitionOS: a real-time AI orchestration server."""
