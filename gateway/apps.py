from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"

    def ready(self) -> None:
        from gateway import invalidation, limits
        from usage import recorder

        invalidation.connect_signals()
        # The usage writer settles reservations once their records are
        # written; it takes the step from here rather than import the gateway,
        # which imports it.
        recorder.settle_with(limits.settle)
