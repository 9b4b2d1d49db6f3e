from typing import Any

from django.apps import AppConfig


class SessionsApiConfig(AppConfig):
    name = "sessions_api"
    verbose_name = "Sessions"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from sessions_api.access.keys import forget_api_key
        from sessions_api.models import ApiKey

        def forget(sender: type, instance: ApiKey, **kwargs: object) -> None:
            forget_api_key(instance.key_hash)

        # A key edited anywhere (the admin too) is re-read on its next request.
        post_save.connect(forget, sender=ApiKey, weak=False, dispatch_uid="forget_api_key_save")
        post_delete.connect(forget, sender=ApiKey, weak=False, dispatch_uid="forget_api_key_delete")

        from django.db.backends.signals import connection_created

        from sessions_api.search import pairs

        def register_search_function(sender: type, connection: Any, **kwargs: object) -> None:
            if connection.vendor == "sqlite":  # the search triggers call it
                pairs.register(connection.connection)

        connection_created.connect(
            register_search_function, weak=False, dispatch_uid="register_search_pairs"
        )
