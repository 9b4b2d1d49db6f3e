"""The interactive API docs load Swagger UI from our own static files, never a CDN."""

from __future__ import annotations

import re


def test_api_docs_use_only_local_assets(client):
    page = client.get("/api/v1/docs")

    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    external = re.findall(r'(?:src|href)="(https?://[^"]+)"', html)
    assert external == []
