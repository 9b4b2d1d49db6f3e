"""Garbage collection for the long-running processes (web workers, Celery workers, imports).

After start-up a process holds about 100,000 container objects that live as long as it does:
Django, the apps, their models, URL patterns and templates. Every full (generation 2)
collection walks all of them again, about 50 ms of CPU here, on whichever request or save
happens to trigger it. ``gc.freeze()`` moves what exists at the end of start-up into a
permanent generation the collector never walks: a full collection then costs what the objects
made since cost (well under a millisecond). The collector's thresholds stay CPython's: raising
the first generation's made no measurable difference to ingest.
"""

from __future__ import annotations

import gc


def freeze_startup_objects(*, import_views: bool = False) -> None:
    """Call once start-up is done, just before serving: collect what start-up left behind and
    move everything that survives out of the collector's reach.

    ``import_views`` loads the URL patterns first, and with them every view and what it
    imports, which Django otherwise does at the first request: a web process wants those frozen
    too.
    """
    if import_views:
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 - the import is the point
    gc.collect()
    gc.freeze()
