"""manage.py load_demo [--count N] [--days D] [--seed S] [--reset]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from sessions_api.demo.dataset import DEFAULT_COUNT, DEFAULT_DAYS, DEFAULT_SEED
from sessions_api.demo.load import load_demo


class Command(BaseCommand):
    help = (
        "Load a demo data set of realistic sessions (Picoflow and OpenAI chat) spread over the "
        "last days, once. A re-run does nothing while demo data is present; --reset replaces it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--count", type=int, default=DEFAULT_COUNT, help="sessions (default %(default)s)"
        )
        parser.add_argument(
            "--days",
            type=int,
            default=DEFAULT_DAYS,
            help="spread them over this many days before now (default %(default)s)",
        )
        parser.add_argument(
            "--seed", type=int, default=DEFAULT_SEED, help="random seed (default %(default)s)"
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="delete the demo sessions loaded before, then load a fresh set",
        )

    def handle(self, *args, count: int, days: int, seed: int, reset: bool, **options):
        if count < 1 or days < 1:
            raise CommandError("--count and --days must be at least 1")
        result = load_demo(
            now=timezone.now().replace(microsecond=0),
            count=count,
            days=days,
            seed=seed,
            reset=reset,
        )
        if result.skipped:
            self.stdout.write(
                f"Demo data already loaded ({result.existing_sessions} sessions); nothing to do. "
                "Use --reset to reload it."
            )
            return
        if result.deleted_sessions:
            self.stdout.write(f"Deleted {result.deleted_sessions} demo sessions.")
        by_format = ", ".join(f"{k} {v}" for k, v in result.sessions_by_format.items())
        by_variant = ", ".join(f"{k} {v}" for k, v in result.sessions_by_variant.items())
        versions = ", ".join(
            f"{sessions} with {n} version{'s' if n > 1 else ''}"
            for n, sessions in result.versions_by_session.items()
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded demo data: {result.sessions_created} sessions created, "
                f"{result.versions_added} versions stored from {result.documents} documents "
                f"({result.unchanged} unchanged)."
            )
        )
        self.stdout.write(f"  by format:  {by_format}")
        self.stdout.write(f"  by shape:   {by_variant}")
        self.stdout.write(f"  versions:   {versions}")
