"""The benchmark runs in a Home Assistant test instance, like the tests."""

import pytest

import custom_components.wmbusmeters  # noqa: F401  (before the plugin's own package)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load integrations from custom_components/."""
