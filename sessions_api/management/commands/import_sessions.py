"""manage.py import_sessions PATH... [--format ID]"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from config.runtime import freeze_startup_objects
from sessions_api.formats import FORMAT_IDS
from sessions_api.ingest import importing


class Command(BaseCommand):
    help = "Import session documents from files, folders (recursively) and JSONL."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--format", choices=FORMAT_IDS, help="skip detection")

    def handle(self, *args, paths: list[Path], format: str | None, **options):
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise CommandError(f"no such file or folder: {', '.join(missing)}")
        freeze_startup_objects()  # a long import parses many documents
        files = importing.find_files(paths)
        tally: Counter[str] = Counter()
        with tqdm(files, unit="file", disable=None, file=self.stderr._out) as progress:
            for path in progress:
                try:
                    sources = list(importing.read_sources(path))
                except OSError as exc:
                    tally["failed"] += 1
                    self._say(progress, f"FAIL {path}: {exc}")
                    continue
                for source in sources:
                    result = importing.import_source(source, format_id=format)
                    tally[_bucket(result)] += 1
                    self._say(
                        progress,
                        f"{'ok  ' if result.ok else 'FAIL'} {result.label}: {result.detail}",
                    )
        self.stdout.write(
            f"{len(files)} file(s): {tally['created']} new, {tally['updated']} updated, "
            f"{tally['unchanged']} unchanged, {tally['failed']} failed"
        )
        if tally["failed"]:
            raise CommandError(f"{tally['failed']} document(s) failed", returncode=2)

    def _say(self, progress: tqdm, line: str) -> None:
        # Per-file results go to the command's stdout, printed above the progress bar.
        progress.write(line, file=self.stdout._out)


def _bucket(result: importing.ImportResult) -> str:
    if not result.ok:
        return "failed"
    if result.created:
        return "created"
    return "updated" if result.changed else "unchanged"
