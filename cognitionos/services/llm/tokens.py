"""Token counts when a provider sends none (llama.cpp's server streams without a usage
block). No tokenizer is bundled for offline use (tiktoken downloads its encodings on first
use), so counts are estimated: a token per four UTF-8 bytes, rounded up, plus a few per
message for the chat framing. Such counts are marked as estimated wherever they show."""

from __future__ import annotations

import json

from cognitionos.services.llm.types import ChatRequest

__all__ = ["estimate_prompt_tokens", "estimate_tokens"]

_BYTES_PER_TOKEN = 4
_MESSAGE_OVERHEAD = 4  # role markers and separators of a chat template


def estimate_tokens(text: str) -> int:
    return -(-len(text.encode()) // _BYTES_PER_TOKEN)


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """The prompt as sent: system, messages, and the output schema when there is one."""
    texts = [
        *([request.system] if request.system else []),
        *(m.get("content") or "" for m in request.messages),
    ]
    if request.output_schema is not None:
        texts.append(json.dumps(request.output_schema))
    return sum(estimate_tokens(t) + _MESSAGE_OVERHEAD for t in texts)
