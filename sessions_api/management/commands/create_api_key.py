"""manage.py create_api_key --name NAME --scopes ingest,read,write,admin"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from sessions_api.access import keys


class Command(BaseCommand):
    help = "Create a scoped API key. The key is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="who or what uses the key")
        parser.add_argument(
            "--scopes",
            default="ingest,read",
            help=f"comma-separated, from: {','.join(keys.API_SCOPES)} (default ingest,read)",
        )

    def handle(self, *args, name: str, scopes: str, **options):
        try:
            created = keys.create_api_key(
                name=name, scopes=[s.strip() for s in scopes.split(",") if s.strip()]
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(
            f"Created API key {created.id} {created.name!r} with scopes "
            f"{','.join(created.scopes)}. It is shown once; only its hash is stored."
        )
        self.stdout.write(created.key)
