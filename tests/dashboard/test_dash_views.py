"""Dashboard pages through Django's test client: login, data, filters, exports, roles, CSRF."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.test import Client

from sessions_api.analytics import overview as analytics
from sessions_api.analytics import pricing
from sessions_api.ingest import services
from tests.dashboard.conftest import ingest_two_versions
from tests.support import sample_data
from tests.support.sample_data import XSS_TEXT, Turn

pytestmark = pytest.mark.django_db

PAGES = ["/", "/sessions/", "/errors/", "/prices/", "/alerts/"]


def session_pages(known) -> list[str]:
    return [
        f"/sessions/{known.a}/",
        f"/sessions/{known.a}/raw/",
        f"/sessions/{known.a}/versions/",
        f"/sessions/{known.a}/timeline/",
        f"/sessions/{known.a}/raw/download/",
        "/sessions/export.csv",
        "/sessions/export.json",
    ]


def test_every_page_requires_login(known):
    client = Client()
    for url in PAGES + session_pages(known):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url


def test_every_page_loads_with_data_and_carries_a_csp(viewer_client, known):
    for url in PAGES + session_pages(known):
        response = viewer_client.get(url)
        assert response.status_code == 200, (url, response.content[:500])
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "object-src 'none'" in policy
        assert "base-uri 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-eval" not in policy and "unsafe-inline" not in policy


def test_login_page_has_a_csp_and_the_fixed_field_names(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert 'name="username"' in response.content.decode()
    assert 'name="password"' in response.content.decode()
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_overview_shows_kpis_and_chart_data(viewer_client, known):
    response = viewer_client.get("/?range=24h")
    html = response.content.decode()
    assert response.status_code == 200
    kpis = response.context["kpis"]
    assert kpis.sessions == 3
    assert kpis.cost == pytest.approx(
        analytics.overview_kpis(since=known.now - timedelta(hours=24), until=known.now).cost
    )
    # Figures travel as JSON in json_script elements; the plotly.js we serve draws them.
    assert 'id="chart-sessions-data" type="application/json"' in html
    assert "/static/vendor/plotly/plotly.min.js" in html
    # Nothing loads from another origin (a CDN): every src and href is a path on this site.
    assert not re.search(r'(?:src|href)=["\']?(?:https?:)?//', html)
    figure = json.loads(
        html.split('id="chart-sessions-data" type="application/json">')[1].split("</script>")[0]
    )
    links = [url for trace in figure["data"] for url in trace["customdata"]]
    assert all(url.startswith("/sessions/?") for url in links)
    assert any("status=completed" in url for url in links)


def test_overview_custom_range_and_presets(viewer_client, known):
    assert viewer_client.get("/?range=1h").status_code == 200
    assert viewer_client.get("/?range=30d&refresh=on").status_code == 200
    old = viewer_client.get("/?since=2020-01-01T00:00&until=2020-01-02T00:00")
    assert old.status_code == 200 and old.context["kpis"].sessions == 0
    assert viewer_client.get("/?since=garbage").status_code == 200


def test_plotly_js_is_served_from_our_static_files(viewer_client):
    response = viewer_client.get("/static/vendor/plotly/plotly.min.js")
    assert response.status_code == 200
    head = b"".join(response.streaming_content)[:200] if response.streaming else response.content
    assert b"plotly.js" in head


def ids_in(response) -> set[str]:
    return {row["record"].id for row in response.context["rows"]}


def test_explorer_filters_narrow_the_list(viewer_client, known):
    assert ids_in(viewer_client.get("/sessions/")) == {known.a, known.b, known.c, known.old}
    assert ids_in(viewer_client.get("/sessions/?status=aborted")) == {known.b}
    assert ids_in(viewer_client.get("/sessions/?status=aborted,completed")) == {
        known.a,
        known.b,
        known.old,
    }
    assert ids_in(viewer_client.get("/sessions/?status=aborted&status=unknown")) == {
        known.b,
        known.c,
    }
    assert ids_in(viewer_client.get("/sessions/?format=openai_chat")) == {known.c}
    assert ids_in(viewer_client.get("/sessions/?agent=TripFlow")) == {known.a, known.old}
    assert ids_in(viewer_client.get("/sessions/?user=ana")) == {known.c}
    assert ids_in(viewer_client.get("/sessions/?model=claude-sonnet-4")) == {known.b}
    assert ids_in(viewer_client.get("/sessions/?tool=get_weather")) == {known.a}
    assert ids_in(viewer_client.get("/sessions/?has_errors=true")) == {known.a, known.b}
    assert ids_in(viewer_client.get("/sessions/?range=24h")) == {known.a, known.b, known.c}
    assert ids_in(viewer_client.get("/sessions/?q=known-b")) == {known.b}
    assert ids_in(viewer_client.get("/sessions/?min_duration=60&max_duration=300")) == {known.a}


def test_explorer_sorts_and_pages_with_keyset_cursors(viewer_client, known):
    by_tokens = viewer_client.get("/sessions/?order=-total_tokens&limit=25")
    tokens = [row["record"].summary.total_tokens for row in by_tokens.context["rows"]]
    assert tokens == sorted(tokens, reverse=True)
    assert viewer_client.get("/sessions/?order=message_count").status_code == 200

    # 4 sessions, pages of 25 would hold them all: ask for pages of 1 by hand.
    from sessions_api.sessions import explorer
    from sessions_api.sessions.selectors import SessionFilters

    seen = []
    page = explorer.explorer_page(filters=SessionFilters(), limit=1)
    seen.append(page.items[0].id)
    assert page.prev_cursor is None
    while page.next_cursor:
        response = viewer_client.get(f"/sessions/?limit=25&cursor={page.next_cursor}")
        assert response.status_code == 200
        page = explorer.explorer_page(filters=SessionFilters(), limit=1, cursor=page.next_cursor)
        seen.append(page.items[0].id)
    assert sorted(seen) == sorted([known.a, known.b, known.c, known.old])
    back = explorer.explorer_page(filters=SessionFilters(), limit=1, cursor=page.prev_cursor)
    assert back.items[0].id == seen[-2]


def test_explorer_rejects_a_bad_cursor_without_a_500(viewer_client, known):
    response = viewer_client.get("/sessions/?cursor=not-a-cursor")
    assert response.status_code == 400
    assert "cursor" in response.content.decode()


def test_export_csv_follows_the_filter(viewer_client, known):
    response = viewer_client.get("/sessions/export.csv?agent=TripFlow")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["id"] for r in rows} == {known.a, known.old}
    row = next(r for r in rows if r["id"] == known.a)
    assert row["estimated_cost_usd"] == "0.004000"
    assert row["agent"] == "TripFlow" and row["tool_error_count"] == "1"


def test_export_json_follows_the_filter(viewer_client, known):
    response = viewer_client.get("/sessions/export.json?status=aborted")
    assert response.status_code == 200
    items = json.loads(b"".join(response.streaming_content))
    assert [item["id"] for item in items] == [known.b]
    assert items[0]["estimated_cost_usd"] == "0.013500"


def test_export_keeps_spreadsheet_formulas_as_text(viewer_client, now):
    body = sample_data.openai_chat_document(
        conv_id="=HYPERLINK(1)", user="@evil", model="m", created=now, turns=[Turn("q", "a")]
    )
    services.ingest_document(body=body, now=now)
    text = b"".join(viewer_client.get("/sessions/export.csv").streaming_content).decode()
    assert "'=HYPERLINK(1)" in text and "'@evil" in text


def test_session_detail_shows_timeline_tool_calls_and_panels(viewer_client, known):
    response = viewer_client.get(f"/sessions/{known.a}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "get_weather" in html and "search_hotels" in html
    assert 'class="badge badge-error">error<' in html
    assert 'class="badge badge-ok">success<' in html
    assert "Step <strong>MainStep</strong>" in html
    assert "TripFlow" in html and "gpt-4o" in html
    assert "$0.0040" in html and "est." in html
    # Structured tool results (JSON text) are pretty-printed.
    assert "{\n  &quot;hotels&quot;: 3\n}" in html
    b = viewer_client.get(f"/sessions/{known.b}/").content.decode()
    assert "upstream model returned 500" in b and "retrying" in b


def test_timeline_marks_no_result_unmatched_and_heuristic(viewer_client, now):
    fixture = (
        __import__("pathlib").Path(__file__).resolve().parents[1]
        / "fixtures/openai_chat/parallel_tools.json"
    )
    outcome = services.ingest_document(body=fixture.read_bytes(), now=now)
    html = viewer_client.get(f"/sessions/{outcome.id}/").content.decode()
    assert "unmatched result" in html  # call_ghost_99 answers no call
    assert "no result" in html  # call_train_03 has no answer
    assert "heuristic" in html  # the Oslo error is inferred from its text


def test_untrusted_text_is_escaped_everywhere(viewer_client, now):
    body = sample_data.picoflow_document(
        session_id="xss-" + XSS_TEXT[:20],
        flow="<svg onload=alert(1)>",
        status="completed",
        model="gpt-4o",
        started=now - timedelta(minutes=5),
        turns=[
            Turn(
                user=XSS_TEXT,
                reply=XSS_TEXT,
                tools=[
                    sample_data.ToolSpec("<b>tool</b>", {"q": XSS_TEXT}, XSS_TEXT, status="error")
                ],
            )
        ],
        errors=[XSS_TEXT],
    )
    sid = services.ingest_document(body=body, now=now).id
    for url in (
        f"/sessions/{sid}/",
        f"/sessions/{sid}/raw/",
        "/sessions/",
        "/errors/",
        "/?range=24h",
        f"/sessions/{sid}/timeline/",
    ):
        text = viewer_client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in text, url
        assert "<img src=x onerror" not in text, url
        assert "<svg onload=alert(1)>" not in text, url
        if url.endswith("/timeline/"):
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in json.loads(text)["html"]


def test_around_opens_the_timeline_at_a_late_event(viewer_client, now):
    body = sample_data.big_picoflow_document(session_id="long", messages=900, started=now)
    sid = services.ingest_document(body=body, now=now + timedelta(hours=1)).id
    first = viewer_client.get(f"/sessions/{sid}/")
    assert first.context["window"].start == 0
    assert len(first.context["window"].events) == 200
    assert 'id="m-700"' not in first.content.decode()
    jumped = viewer_client.get(f"/sessions/{sid}/?around=700")
    html = jumped.content.decode()
    assert 'id="m-700"' in html
    assert jumped.context["window"].start > 0
    assert "Load earlier events" in html


def test_timeline_fragment_pages_through_events(viewer_client, now):
    body = sample_data.big_picoflow_document(session_id="long2", messages=500, started=now)
    sid = services.ingest_document(body=body, now=now + timedelta(hours=1)).id
    page = viewer_client.get(f"/sessions/{sid}/timeline/?start=200&limit=200").json()
    assert page["start"] == 200 and page["end"] == 400 and page["total"] > 500
    assert 'data-index="200"' in page["html"] and 'data-index="399"' in page["html"]
    assert viewer_client.get(f"/sessions/{sid}/timeline/?start=999999").json()["html"].strip() == ""


def test_versions_and_diff(viewer_client, now):
    *_, sid = ingest_two_versions("versioned", now)
    response = viewer_client.get(f"/sessions/{sid}/versions/?a=1&b=2")
    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["diff"].added > 0
    assert 'class="d-add"' in html and "second question" in html
    assert "delta of v1" in html and "snapshot" in html
    assert response.context["stored_bytes"] < response.context["received_bytes"]
    assert viewer_client.get(f"/sessions/{sid}/versions/?a=1&b=9").context["problem"]
    raw_v1 = viewer_client.get(f"/sessions/{sid}/raw/?version=1").content.decode()
    assert "second question" not in raw_v1
    download = viewer_client.get(f"/sessions/{sid}/raw/download/?version=2")
    assert download["Content-Disposition"].startswith("attachment")
    assert b"second question" in download.content


def test_unknown_session_is_a_404(viewer_client, db):
    assert viewer_client.get("/sessions/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_errors_page_lists_and_filters(viewer_client, known):
    response = viewer_client.get("/errors/?range=24h")
    items = response.context["page"].items
    assert {e.kind for e in items} == {"tool_error", "log_error"}
    html = response.content.decode()
    tool_error = next(e for e in items if e.kind == "tool_error")
    assert (
        f"/sessions/{known.a}/?around={tool_error.message_seq}#m-{tool_error.message_seq}" in html
    )
    only_tool = viewer_client.get("/errors/?range=24h&tool=get_weather").context["page"].items
    assert [e.tool_name for e in only_tool] == ["get_weather"]
    by_agent = viewer_client.get("/errors/?range=24h&agent=SupportFlow").context["page"].items
    assert {e.session_id for e in by_agent} == {known.b}
    warnings = viewer_client.get("/errors/?range=24h&kind=log_warning").context["page"].items
    assert [e.message for e in warnings] == ["retrying"]
    assert viewer_client.get("/errors/?range=1h&kind=all").status_code == 200


def price_form(**overrides):
    data = {
        "model": "gpt-test",
        "input_per_mtok": "1.5",
        "cached_input_per_mtok": "",
        "output_per_mtok": "6",
        "effective_from": "2025-06-01",
        "currency": "usd",
        "notes": "",
    }
    data.update(overrides)
    return data


def test_prices_are_read_only_for_viewers(viewer_client, known):
    response = viewer_client.get("/prices/")
    assert response.status_code == 200
    assert "gpt-4o" in response.content.decode()
    assert not response.context["can_edit"]
    assert viewer_client.post("/prices/", price_form()).status_code == 403
    assert viewer_client.get("/prices/1/edit/").status_code == 403
    assert all(p.model != "gpt-test" for p in pricing.list_prices())


def test_admins_add_and_edit_prices(admin_client_, known):
    response = admin_client_.post("/prices/", price_form())
    assert response.status_code == 302
    added = next(p for p in pricing.list_prices() if p.model == "gpt-test")
    assert added.currency == "USD" and added.updated_by == "adam"
    duplicate = admin_client_.post("/prices/", price_form())
    assert duplicate.status_code == 400 and "already has a price" in duplicate.content.decode()
    edit = admin_client_.post(f"/prices/{added.id}/edit/", price_form(output_per_mtok="7"))
    assert edit.status_code == 302
    assert next(p for p in pricing.list_prices() if p.id == added.id).output_per_mtok == 7
    invalid = admin_client_.post("/prices/", price_form(input_per_mtok="-1", model="x"))
    assert invalid.status_code == 400


def test_superusers_count_as_admins(db):
    from django.contrib.auth.models import User

    boss = User.objects.create_superuser("boss", "boss@example.com", "pw-for-tests-123")
    client = Client()
    client.force_login(boss)
    assert client.get("/prices/").context["can_edit"]


def test_price_form_enforces_csrf(admin_user, known):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post("/prices/", price_form()).status_code == 403
    # With the token from the page, the same post goes through.
    page = client.get("/prices/")
    token = page.cookies["csrftoken"].value
    response = client.post("/prices/", price_form(csrfmiddlewaretoken=token))
    assert response.status_code == 302


def test_seed_prices_is_idempotent(db):
    from django.core.management import call_command

    call_command("seed_prices")
    count = len(pricing.list_prices())
    call_command("seed_prices")
    assert len(pricing.list_prices()) == count >= 5


def test_export_keeps_disguised_formulas_as_text(viewer_client, now):
    body = sample_data.openai_chat_document(
        conv_id="\n=HYPERLINK(2)", user="\uff1dcmd", model="m", created=now, turns=[Turn("q", "a")]
    )
    services.ingest_document(body=body, now=now)
    rows = list(
        csv.reader(
            io.StringIO(
                b"".join(viewer_client.get("/sessions/export.csv").streaming_content).decode()
            )
        )
    )
    cells = {cell for row in rows for cell in row}
    assert "\uff1dcmd" not in cells and "'\uff1dcmd" in cells
