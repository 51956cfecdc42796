"""The model catalogue as the hot path sees it: immutable, in memory, reloaded
when the admin or loadconfig changes it (or after PUREBRIDGE_CACHE_TTL)."""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings

from gateway.db import database_down, run_db
from gateway.errors import DatabaseUnavailable, InvalidRequest, ModelNotFound

if TYPE_CHECKING:
    from gateway.auth import KeyInfo
    from gateway.providers.base import Adapter


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    id: int
    name: str
    kind: str
    base_url: str
    api_key: str
    connect_timeout: float
    first_byte_timeout: float
    idle_timeout: float
    total_timeout: float
    responses_api: bool = False


@dataclass(frozen=True, slots=True)
class RouteConfig:
    id: int
    provider: ProviderConfig
    upstream_model: str
    priority: int
    weight: int
    adapter: Adapter


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per million tokens."""

    input: Decimal
    cached_input: Decimal
    output: Decimal
    cache_write: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ModelConfig:
    public_id: str
    owned_by: str
    created: int
    prices: Prices
    routes: tuple[RouteConfig, ...]
    default_max_output_tokens: int = 4096
    max_output_tokens: int | None = None  # None: the upstream's own limit
    kind: str = "chat"  # or "embedding" (gateway.models.CatalogModel.Kind)


@dataclass(frozen=True, slots=True)
class Catalogue:
    models: dict[str, ModelConfig]
    loaded_at: float

    def visible_to(self, allowed: frozenset[str] | None) -> list[ModelConfig]:
        return [m for m in self.models.values() if allowed is None or m.public_id in allowed]


# What a request to a model of the other kind is told to use instead.
_KIND_HINTS = {
    "chat": "it is an embedding model: use POST /v1/embeddings",
    "embedding": "it is not an embedding model: use a model of kind embedding",
}


def authorize(
    catalogue: Catalogue, key: KeyInfo, model_id: str, kind: str | None = None
) -> ModelConfig:
    """The model, if it exists and this key may use it (else 404); with `kind`,
    a model of another kind (a chat request to an embedding model, or the
    reverse) is a 400 naming `model`."""
    model = catalogue.models.get(model_id)
    if model is None or (key.allowed_models is not None and model_id not in key.allowed_models):
        raise ModelNotFound(model_id)
    if kind is not None and model.kind != kind:
        raise InvalidRequest(
            f"The model `{model_id}` cannot be used with this endpoint: {_KIND_HINTS[kind]}.",
            param="model",
        )
    return model


def _load_catalogue() -> Catalogue:
    from gateway.models import CatalogModel, Route
    from gateway.providers import adapter_for

    providers: dict[int, ProviderConfig] = {}
    adapters: dict[int, Adapter] = {}
    routes: dict[int, list[RouteConfig]] = {}
    query = Route.objects.filter(enabled=True, provider__enabled=True, model__enabled=True)
    for route in query.select_related("provider").order_by("priority", "id"):
        p = route.provider
        if p.id not in providers:
            providers[p.id] = ProviderConfig(
                id=p.id,
                name=p.name,
                kind=p.kind,
                base_url=p.base_url.rstrip("/"),
                api_key=p.api_key,
                connect_timeout=p.connect_timeout,
                first_byte_timeout=p.first_byte_timeout,
                idle_timeout=p.idle_timeout,
                total_timeout=p.total_timeout,
                responses_api=p.responses_api and p.kind == "openai",
            )
            adapters[p.id] = adapter_for(providers[p.id])
        routes.setdefault(route.model_id, []).append(
            RouteConfig(
                id=route.id,
                provider=providers[p.id],
                upstream_model=route.upstream_model,
                priority=route.priority,
                weight=route.weight,
                adapter=adapters[p.id],
            )
        )
    models = {
        m.public_id: ModelConfig(
            public_id=m.public_id,
            owned_by=m.owned_by,
            created=int(m.created_at.timestamp()),
            prices=Prices(
                m.input_per_mtok,
                m.cached_input_per_mtok,
                m.output_per_mtok,
                m.cache_write_per_mtok,
            ),
            routes=tuple(routes.get(m.id, ())),
            default_max_output_tokens=m.default_max_output_tokens,
            max_output_tokens=m.max_output_tokens,
            kind=m.kind,
        )
        for m in CatalogModel.objects.filter(enabled=True).order_by("public_id")
    }
    return Catalogue(models=models, loaded_at=time.monotonic())


class _Holder:
    def __init__(self) -> None:
        self.current: Catalogue | None = None
        # The last one read, served while the database cannot be read.
        self.last: Catalogue | None = None
        # One lock per event loop: a process normally has one, tests have several.
        self.locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self.locks.get(loop)
        if lock is None:
            lock = self.locks[loop] = asyncio.Lock()
        return lock


_holder = _Holder()


async def get_catalogue() -> Catalogue:
    current = _holder.current
    if current is not None and time.monotonic() - current.loaded_at < settings.PUREBRIDGE_CACHE_TTL:
        return current
    if _holder.last is not None and database_down():
        return _holder.last
    async with _holder.lock():
        # Another request may have reloaded while this one waited for the lock.
        current = _holder.current
        if current is None or time.monotonic() - current.loaded_at >= settings.PUREBRIDGE_CACHE_TTL:
            try:
                current = await run_db(_load_catalogue)
            except DatabaseUnavailable:
                if _holder.last is None:
                    raise
                return _holder.last
            _holder.current = _holder.last = current
    return current


def invalidate_catalogue() -> None:
    _holder.current = None
