"""The registry's two tables agree with the format ids: one adapter and one editor per id,
each found in its format's package, and nothing for an id the product does not know. The
detection rules of the formats added later take none of the first formats' documents."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from helpers import assert_folder_detects_as_its_format

import sessions_api.formats
from sessions_api.errors import NotEditable, UnknownFormat
from sessions_api.formats import registry
from sessions_api.formats.editing import ReadOnlyEditor, editor_for
from sessions_api.formats.registry import (
    ADAPTERS,
    EDITORS,
    FORMAT_IDS,
    by_format_id,
    get_adapter,
)

FORMAT_PACKAGES = sorted(
    module.name for module in pkgutil.iter_modules(sessions_api.formats.__path__) if module.ispkg
)


def test_the_format_ids_are_distinct() -> None:
    assert len(set(FORMAT_IDS)) == len(FORMAT_IDS)


@pytest.mark.parametrize("format_id", FORMAT_IDS)
def test_every_format_id_has_one_adapter_and_one_editor_of_its_own(format_id: str) -> None:
    assert ADAPTERS[format_id].format_id == format_id
    assert EDITORS[format_id].format_id == format_id
    assert get_adapter(format_id) is ADAPTERS[format_id]
    assert editor_for(format_id) is EDITORS[format_id]


def test_there_is_no_adapter_or_editor_for_an_unknown_id() -> None:
    assert sorted(ADAPTERS) == sorted(FORMAT_IDS)
    assert sorted(EDITORS) == sorted(FORMAT_IDS)
    with pytest.raises(UnknownFormat):
        get_adapter("not_a_format")
    with pytest.raises(NotEditable):
        editor_for("not_a_format")


def test_each_format_package_is_a_format_id() -> None:
    assert sorted(FORMAT_IDS) == FORMAT_PACKAGES


@pytest.mark.parametrize("format_id", FORMAT_IDS)
def test_the_registry_holds_the_adapter_and_editor_of_the_format_package(format_id: str) -> None:
    package = f"sessions_api.formats.{format_id}"
    assert importlib.import_module(f"{package}.parse").ADAPTER is ADAPTERS[format_id]
    assert importlib.import_module(f"{package}.edit").EDITOR is EDITORS[format_id]


def test_a_second_entry_for_a_format_id_is_refused() -> None:
    editors = (*EDITORS.values(), ReadOnlyEditor("picoflow", "a second Picoflow editor"))

    with pytest.raises(RuntimeError, match="two editors for the format id 'picoflow'"):
        by_format_id(editors, "editor")


def test_a_missing_entry_is_refused() -> None:
    adapters = tuple(adapter for adapter in ADAPTERS.values() if adapter.format_id != "falai")

    with pytest.raises(RuntimeError, match="do not match the format ids"):
        by_format_id(adapters, "adapter")


def test_detection_rules_come_only_from_registered_adapters() -> None:
    assert {rule.format_id for rule in registry.RULES} <= set(FORMAT_IDS)


@pytest.mark.parametrize("folder", ["openai_chat", "picoflow"])
def test_openai_chat_and_picoflow_fixtures_still_detect_as_before(folder: str) -> None:
    assert_folder_detects_as_its_format(folder)
