"""Embedders: text to unit vectors of the deployment's dimension.

WordLlama (default) is offline: its weights ship in its wheel and are loaded from there
with downloads disabled. OpenAI uses ``text-embedding-3-small`` with ``dimensions`` set.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cognitionos.config import Settings
from cognitionos.services.errors import LLMUnavailable

__all__ = ["Embedder", "OpenAIEmbedder", "WordLlamaEmbedder", "build_embedder"]

_WORDLLAMA_DIM = 256  # the weights that ship in the wheel (Matryoshka: may be truncated)
_INLINE = 32  # batches up to this size embed on the loop (microseconds); larger in a thread


class Embedder(Protocol):
    name: str
    dim: int

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit-length vector per text."""
        ...

    async def aclose(self) -> None: ...


def _unit(matrix: Any) -> list[list[float]]:
    array = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (array / norms).tolist()  # type: ignore[no-any-return]


class WordLlamaEmbedder:
    def __init__(self, dim: int) -> None:
        if not 1 <= dim <= _WORDLLAMA_DIM:
            raise ValueError(
                f"WordLlama embeds at most {_WORDLLAMA_DIM} dimensions (COGNITIONOS_MEMORY_DIM="
                f"{dim}); lower it or set COGNITIONOS_MEMORY_EMBEDDER=openai"
            )
        self.dim = dim
        self.name = f"wordllama-l2-supercat:{dim}"
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                import wordllama

                self._model = wordllama.WordLlama.load(
                    cache_dir=Path(wordllama.__file__).parent,
                    disable_download=True,
                    dim=_WORDLLAMA_DIM,
                    trunc_dim=self.dim if self.dim < _WORDLLAMA_DIM else None,
                )
            return self._model

    def _embed(self, texts: list[str]) -> list[list[float]]:
        # Normalized here: WordLlama's own norm divides an empty text's zero vector by 0.
        return _unit(self._load().embed(texts, norm=False))

    async def aclose(self) -> None:
        return None

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        if len(texts) <= _INLINE and self._model is not None:
            return self._embed(texts)
        return await asyncio.to_thread(self._embed, texts)


class OpenAIEmbedder:
    def __init__(self, settings: Settings) -> None:
        if not settings.openai_api_key:
            raise LLMUnavailable("the openai embedder needs OPENAI_API_KEY")
        import openai

        self.dim = settings.memory_dim
        self.model = settings.memory_openai_model
        self.name = f"openai-{self.model}:{self.dim}"
        self._client = openai.AsyncOpenAI(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout_seconds,
        )

    async def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), 256):  # the API takes up to 2048 inputs a call
            answer = await self._client.embeddings.create(
                model=self.model, input=texts[start : start + 256], dimensions=self.dim
            )
            vectors += [d.embedding for d in sorted(answer.data, key=lambda d: d.index)]
        return _unit(vectors) if vectors else []

    async def aclose(self) -> None:
        await self._client.close()


def build_embedder(settings: Settings) -> Embedder:
    if settings.memory_embedder == "wordllama":
        return WordLlamaEmbedder(settings.memory_dim)
    if settings.memory_embedder == "openai":
        return OpenAIEmbedder(settings)
    raise ValueError(
        f"COGNITIONOS_MEMORY_EMBEDDER={settings.memory_embedder!r}: use wordllama or openai"
    )
