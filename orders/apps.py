from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "QFEX orders"

    def ready(self) -> None:
        from django.core import checks

        from orders.checks import check_encryption_key_source, check_encryption_keys

        # Tagged "security" so it also runs under ``check --deploy``; registered here, not at import,
        # so importing orders.checks elsewhere never registers it twice.
        checks.register(check_encryption_keys, checks.Tags.security)
        # Only under ``check --deploy`` (S27): the demo and tests keep their key in the state folder.
        checks.register(check_encryption_key_source, checks.Tags.security, deploy=True)
