"""Alerts on the session lifecycle: rules, their evaluation, and delivering notifications.

- ``rules``: the rules themselves (create, change, mute, delete), validated in one place.
- ``evaluate``: turns events into notifications. A save that changes a session writes an
  outbox row in its own transaction (``note_session_saved``) and, at commit, asks a worker to
  check it at once; the evaluate_alerts job sweeps what a crash left behind and checks the
  rules that need a clock (stuck sessions, tool error rates over a window).
- ``delivery``: signed webhooks and email, retried with backoff; every attempt recorded.
- ``selectors``: what the Alerts page and the API read.

A notification is unique per (rule, dedupe key): ``session:<id>`` for session events (one per
rule and session, whatever the retries, restarts and re-ingests), ``rate:<key>:<since>`` and
``resolved:<key>:<since>`` for a rate window.
"""
