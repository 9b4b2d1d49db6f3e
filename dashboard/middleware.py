"""A Content-Security-Policy on every response.

No inline scripts anywhere (our JS lives in static/js/), so ``script-src 'self'`` holds with no
'unsafe-inline' and no 'unsafe-eval'. plotly.js's global stylesheet rules, which it would
otherwise inject as an inline <style>, are served from static/css/plotly-csp.css (the page marks
it with the id plotly.js looks for, so plotly does not try to inject them); it styles elements
through the CSSOM, which style-src does not restrict. So styles are 'self' only too.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
