from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "usage"

    def ready(self) -> None:
        from usage.recorder import copy_plan

        # A record column the usage writer has no value for stops the start,
        # rather than the first batch.
        copy_plan()
