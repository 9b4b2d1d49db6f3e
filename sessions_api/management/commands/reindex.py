"""manage.py reindex [SESSION_ID ...]"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from tqdm import tqdm

from sessions_api.models import Session
from sessions_api.search import index


class Command(BaseCommand):
    help = (
        "Rebuild the full-text search entries from each session's latest version (all "
        "sessions, or the ids given). Safe while ingest runs: each session is rebuilt under "
        "its row lock. Needed once after upgrading to a release that adds search."
    )

    def add_arguments(self, parser):
        parser.add_argument("session_ids", nargs="*", help="only these sessions (ids)")

    def handle(self, *args, session_ids: list[str], **options):
        total = len(session_ids) if session_ids else Session.objects.count()
        failures: list[str] = []

        def on_session(pk, error):
            progress.update()
            if error is not None:
                failures.append(f"FAIL {pk}: {error}")

        with tqdm(total=total, unit="session", disable=None, file=self.stderr._out) as progress:
            done, failed = index.reindex(session_ids=session_ids or None, on_session=on_session)
        for line in failures:
            self.stdout.write(line)
        self.stdout.write(f"reindexed {done} session(s), {failed} failed")
