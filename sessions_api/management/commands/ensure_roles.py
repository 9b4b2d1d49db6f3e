"""manage.py ensure_roles: the dashboard's groups exist (viewer, editor, admin)."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

# viewer reads, editor also edits session state, admin also deletes and manages keys. The
# permissions each role carries are attached where those features live.
ROLES = ("viewer", "editor", "admin")


class Command(BaseCommand):
    help = "Create the groups viewer, editor and admin if they are missing. Safe to run again."

    def handle(self, *args, **options):
        created = [name for name in ROLES if Group.objects.get_or_create(name=name)[1]]
        if created:
            self.stdout.write(f"Created groups: {', '.join(created)}")
        else:
            self.stdout.write("Groups viewer, editor, admin already exist.")
