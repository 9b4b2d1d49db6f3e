"""Every regular expression of the project fed adversarial strings of 100,000 characters.

The patterns are found, not listed: every compiled ``re.Pattern`` at module level in the
project's packages, plus every literal pattern passed inline to ``re.match/search/sub/...``
(found by reading the source). A new regex is therefore tested the day it is added. Each call
must finish within BOUND: the aim is <= 100 ms; the assertion uses a generous bound
on this shared, noisy machine, as a guard against catastrophic (exponential or quadratic)
backtracking, which would take seconds to hours on these inputs. The slowest call is printed.

Also through the API: the request paths that run those regexes on client text, with 100k-char
hostile values, answer within the same bound. And no HTML-aware truncation filter or
``|safe`` ever touches LLM text in a template.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import signal
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sessions_api", "dashboard", "config", "workers")
N = 100_000
BOUND = 1.0  # seconds; see the module docstring
INLINE_CALLS = {"match", "search", "sub", "subn", "fullmatch", "findall", "finditer", "split"}


def project_modules() -> list[str]:
    names = []
    for package in PACKAGES:
        module = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            if ".migrations" in info.name or info.name.endswith((".wsgi", ".asgi")):
                continue
            names.append(info.name)
    return names


ALL_OPS = ("search", "match", "fullmatch", "sub")


def _attribute_calls(tree: ast.AST) -> dict[str, set[str]]:
    """{name: {method, ...}} for every ``name.method(...)`` call in a module."""
    calls: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
        ):
            calls.setdefault(node.func.value.id, set()).add(node.func.attr)
    return calls


def _used_ops(methods: set[str]) -> tuple[str, ...]:
    """The pattern methods a module calls, mapped onto what the test runs; all when unknown
    (a pattern handed to other code)."""
    mapping = {
        "search": "search",
        "match": "match",
        "fullmatch": "fullmatch",
        "sub": "sub",
        "subn": "sub",
        "findall": "search",
        "finditer": "search",
        "split": "search",
    }
    ops = tuple(sorted({mapping[m] for m in methods if m in mapping}))
    return ops or ALL_OPS


def discover_patterns() -> dict[str, tuple[re.Pattern, tuple[str, ...]]]:
    """{name: (pattern, the operations the code applies to it)}."""
    found: dict[str, tuple[re.Pattern, tuple[str, ...]]] = {}
    seen: set[int] = set()
    for name in project_modules():
        module = importlib.import_module(name)
        source = Path(module.__file__ or "")
        tree = ast.parse(source.read_text()) if source.suffix == ".py" else ast.Module([], [])
        calls = _attribute_calls(tree)
        for attr, value in vars(module).items():
            if isinstance(value, re.Pattern) and id(value) not in seen:
                seen.add(id(value))
                found[f"{name}.{attr}"] = (value, _used_ops(calls.get(attr, set())))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "re"
                and node.func.attr in INLINE_CALLS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                flags = 0
                for keyword in node.keywords:
                    if keyword.arg == "flags":
                        flags = eval(compile(ast.Expression(keyword.value), "", "eval"), {"re": re})
                pattern = re.compile(node.args[0].value, flags)
                found[f"{name}:{node.lineno}"] = (pattern, _used_ops({node.func.attr}))
    return found


PATTERNS = discover_patterns()

GENERIC = 'aA_/\\" \t\n0.:@=-{}[],$\x00\ud800\u00e9'


def adversarial(pattern: re.Pattern) -> list[str]:
    chars = sorted(set(GENERIC) | {c for c in pattern.pattern if c.isprintable()})[:60]
    strings = [c * N for c in chars]
    pairs = ['\\"', 'a"', "a/", "a_", "/_", "aA", " \t", "1.", "a:", "a@", ':"', "{[", '"\\\\']
    strings += [(p * (N // len(p) + 1))[:N] for p in pairs]
    strings += [
        "a/" * (N // 2 - 8) + "x_scratch.md!",
        '"' + "\\" * (N - 2) + '"',
        '"' + '\\"' * (N // 2 - 1),
        "so_abcdef123456_" + "A" * N,
        "x://" + "a:" * (N // 2),
        "postgresql://" + "u" * 199 + ":" + "p" * N,
        "password=" * (N // 9),
        " " * (N - 3) + "1.5",
        "9" * N + "s",
    ]
    return strings


def _call(pattern: re.Pattern, op: str, text: str) -> None:
    if op == "sub":
        pattern.sub("", text)
    else:
        getattr(pattern, op)(text)


class _Overrun(Exception):
    pass


def _interrupt(signum, frame):
    raise _Overrun


@pytest.fixture
def deadline():
    """Interrupt a runaway match (the regex engine checks signals) instead of hanging."""
    previous = signal.signal(signal.SIGALRM, _interrupt)
    yield lambda seconds: signal.setitimer(signal.ITIMER_REAL, seconds)
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_every_project_regex_was_found():
    """A sanity check on the discovery: the known ones are in the list."""
    names = set(PATTERNS)
    assert "sessions_api.formats.decoding._STRING_TOKEN" in names
    assert PATTERNS["sessions_api.formats.decoding._STRING_REST"][1] == ("match",)
    assert any(n.endswith("._CONTROL") for n in names)  # external ids (services)
    assert "config.logging._URL_PASSWORD" in names
    assert any(n.startswith("sessions_api.formats.google_adk.parse:") for n in names)
    assert len(PATTERNS) >= 15


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_regex_is_linear_on_100k_adversarial_strings(name, deadline):
    pattern, ops = PATTERNS[name]
    slowest = (0.0, "", "")
    for text in adversarial(pattern):
        for op in ops:
            started = time.perf_counter()
            deadline(BOUND * 3)
            try:
                _call(pattern, op, text)
            except _Overrun:
                pytest.fail(f"{name}.{op} ran over {BOUND * 3:.0f} s on {text[:40]!r}...")
            finally:
                deadline(0)
            elapsed = time.perf_counter() - started
            if elapsed > slowest[0]:
                slowest = (elapsed, op, repr(text[:24]))
            assert elapsed < BOUND, f"{name}.{op} took {elapsed:.2f} s on {text[:40]!r}..."
    print(f"{name} {ops}: slowest {slowest[0] * 1000:.1f} ms ({slowest[1]} on {slowest[2]})")


# --- through the request paths ------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "params"),
    [
        ("/sessions", '{"id": "' + "\\" * 2 * (N // 2) + '"}', {}),
        ("/sessions", '{"id": "x", "k": "' + '\\"' * (N // 2) + '"}', {}),
        ("/sessions", "[" + '"a",' * (N // 4) + '"a"]', {}),
        ("/sessions", '{"' + "A" * N + '": 1}', {"format": "google_adk"}),
        ("/sessions", '{"' + "a_" * (N // 2) + '": 1}', {"format": "falai"}),
        ("/sessions", "{}", {"external_id": "\x01" + "a" * 500}),
        ("/sessions", '{"x": 1}', {"external_id": "a" * N}),
    ],
    ids=[
        "backslashes",
        "escaped-quotes",
        "commas",
        "camel-keys",
        "snake-keys",
        "ctl-id",
        "long-id",
    ],
)
def test_hostile_ingest_bodies_answer_within_the_bound(api, path, body, params):
    started = time.perf_counter()
    response = api.post(path, body.encode(), **params)
    elapsed = time.perf_counter() - started
    assert response.status_code < 500, response.content[:300]
    assert elapsed < BOUND * 2, f"took {elapsed:.2f} s"


@pytest.mark.django_db
@pytest.mark.parametrize("param", ["q", "agent", "tool", "cursor", "order", "since", "status"])
def test_hostile_query_values_answer_within_the_bound(api, param):
    started = time.perf_counter()
    response = api.get("/sessions", **{param: ("a\\_%" * (N // 4))[:8000]})
    assert response.status_code < 500, response.content[:300]
    assert time.perf_counter() - started < BOUND


def test_no_html_aware_truncation_or_safe_filter_on_any_template():
    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for needle in ("truncatechars_html", "truncatewords_html", "|safe", "autoescape off"):
            if needle in text:
                offenders.append((template.name, needle))
    for package in ("dashboard", "sessions_api"):
        for source in (ROOT / package).rglob("*.py"):
            if "mark_safe(" in source.read_text():
                offenders.append((str(source.relative_to(ROOT)), "mark_safe"))
    assert offenders == []
