from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing.services import usage_debit
        from usage import recorder

        # Usage is debited from the balance in the transaction that writes its
        # records: both commit, or neither.
        recorder.on_store(usage_debit)
