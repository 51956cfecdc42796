from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"

    def ready(self) -> None:
        from gateway import invalidation
        from usage import recorder

        invalidation.connect_signals()
        # The usage writer settles reservations once their records are
        # written; it takes the step from here rather than import the gateway,
        # which imports it.
        recorder.settle_with(_written)


def _written(batch) -> None:
    """What follows a batch of usage records into the database: their
    reservations become real costs, then their journal traces go."""
    from gateway import journal, limits

    limits.settle(batch)
    journal.drop(batch)
