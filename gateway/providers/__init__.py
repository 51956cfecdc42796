"""Provider adapters, one module per kind of upstream."""

from __future__ import annotations

from gateway.catalogue import ProviderConfig
from gateway.providers.base import Adapter


def adapter_for(provider: ProviderConfig) -> Adapter:
    from gateway.providers.anthropic import AnthropicAdapter
    from gateway.providers.echo import EchoAdapter
    from gateway.providers.openai import OpenAIAdapter

    kinds: dict[str, type[Adapter]] = {
        "openai": OpenAIAdapter,
        "anthropic": AnthropicAdapter,
        "echo": EchoAdapter,
    }
    return kinds[provider.kind](provider)
