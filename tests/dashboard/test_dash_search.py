"""Search in the dashboard: result snippets that link to their event, the session page opened
at that event, the in-session find box, and hostile text escaped in all of them."""

from __future__ import annotations

import re
from datetime import timedelta

from sessions_api.ingest import services
from tests.support import sample_data
from tests.support.sample_data import XSS_TEXT, Turn

ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


def test_a_result_links_to_its_event_and_the_page_opens_there(viewer_client, now):
    body = sample_data.big_picoflow_document(session_id="long", messages=900, started=now)
    sid = services.ingest_document(body=body, now=now + timedelta(hours=1)).id
    html = viewer_client.get("/sessions/", {"q": '"answer number 449"'}).content.decode()
    link = re.search(rf'href="(/sessions/{sid}/\?event=(\d+)#ev-\2)"', html)
    assert link is not None, html[:2000]
    assert "<mark>answer number 449</mark>" in html
    index = int(link.group(2))
    page = viewer_client.get(link.group(1).split("#")[0])
    window = page.context["window"]
    assert window.start <= index < window.end  # the window holds the event, not the first page
    assert window.start > 0
    assert f'id="ev-{index}"' in page.content.decode()


def test_a_miss_says_nothing_matches(viewer_client, known):
    html = viewer_client.get("/sessions/", {"q": "zebra-unicorn-nowhere"}).content.decode()
    assert "No sessions match these filters." in html


def test_the_find_box_lists_every_matching_event_with_links(viewer_client, now):
    body = sample_data.big_picoflow_document(session_id="find", messages=40, started=now)
    sid = services.ingest_document(body=body, now=now + timedelta(hours=1)).id
    page = viewer_client.get(f"/sessions/{sid}/", {"find": '"number 1"'})
    found = page.context["found"]
    assert found.total == 22  # questions and answers 1 and 10-19
    html = page.content.decode()
    assert f"find=%22number%201%22&amp;event={found.hits[0].event_index}#ev-" in html
    assert html.count("<mark>") >= 22


def test_hostile_text_is_escaped_in_snippets_and_in_the_find_box(viewer_client, now):
    body = sample_data.picoflow_document(
        session_id="xss-search",
        flow="XssFlow",
        status="completed",
        model="gpt-4o",
        started=now - timedelta(minutes=5),
        turns=[Turn(user=XSS_TEXT, reply="fine")],
    )
    sid = services.ingest_document(body=body, now=now).id
    for response in (
        viewer_client.get("/sessions/", {"q": "alert(1)"}),
        viewer_client.get(f"/sessions/{sid}/", {"find": "onerror"}),
        viewer_client.get(f"/sessions/{sid}/", {"find": '"<script>"'}),
    ):
        html = response.content.decode()
        assert "<script>alert(1)</script>" not in html
        assert "<img src=x onerror" not in html
        assert "<mark>" in html
        assert "&lt;img src=x" in html
        assert '"<script>' not in html.split('name="find"')[-1][:200]  # the box's own value
