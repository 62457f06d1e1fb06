"""The wmbus package's tests run without Home Assistant: the autouse fixtures of
tests/conftest.py that make a Home Assistant instance or patch the integration are switched off
here. Its other fixtures (the real binaries, the fake one, the recorded simulations) are
inherited as they are."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """No Home Assistant instance (tests/conftest.py's asks for one)."""


@pytest.fixture(autouse=True)
def own_config_dir() -> None:
    """No integration to point elsewhere: each runner here writes under its test's tmp_path."""
