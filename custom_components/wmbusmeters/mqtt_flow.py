"""The add-receiver and reconfigure steps of an MQTT receiver: the topic filter its gateways
publish raw frames to, their payload format, and the program that decodes them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntryState, ConfigFlow, ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import TextSelector

from .compat import vol
from .const import (
    CONF_COMMAND,
    CONF_DEVICE,
    CONF_DEVICE_TYPE,
    CONF_FRAME_FIELD,
    CONF_LINK_MODES,
    CONF_MQTT_TOPIC,
    CONF_PAYLOAD_FORMAT,
    DEFAULT_MQTT_TOPIC,
)
from .forms import choice_list
from .meters import mqtt_config, receiver_entries
from .validation import probe_command, program_placeholders
from .wmbus.bundled import default_command
from .wmbus.config import STDIN_DEVICE
from .wmbus.mqtt_frames import (
    DEFAULT_FIELD,
    PAYLOAD_FORMATS,
    MqttConfig,
    is_payload_format,
    topic_problem,
    valid_field_name,
)

MQTT_DOMAIN = "mqtt"


def mqtt_schema() -> vol.Schema:
    """An MQTT receiver: command, topic filter, payload format and the JSON frame field."""
    return vol.Schema(
        {
            vol.Required(CONF_COMMAND): TextSelector(),
            vol.Required(CONF_MQTT_TOPIC): TextSelector(),
            vol.Required(CONF_PAYLOAD_FORMAT): choice_list(PAYLOAD_FORMATS, CONF_PAYLOAD_FORMAT),
            vol.Optional(CONF_FRAME_FIELD): TextSelector(),
        }
    )


def mqtt_unique_id(data: Mapping[str, Any]) -> str:
    """One receiver per topic filter (two would decode each frame twice)."""
    return f"mqtt:{data[CONF_MQTT_TOPIC]}"


def mqtt_title(topic: str) -> str:
    """A new MQTT receiver's name."""
    return f"wmbusmeters MQTT {topic}"


def read_mqtt(user_input: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any] | None:
    """The entry data of an MQTT form, or None with errors keyed by field."""
    topic = str(user_input.get(CONF_MQTT_TOPIC, "")).strip()
    if problem := topic_problem(topic):
        errors[CONF_MQTT_TOPIC] = problem
    payload_format = user_input.get(CONF_PAYLOAD_FORMAT)
    if not is_payload_format(payload_format):
        errors[CONF_PAYLOAD_FORMAT] = "invalid_config"
    field = str(user_input.get(CONF_FRAME_FIELD) or "").strip() or DEFAULT_FIELD
    if not valid_field_name(field):
        errors[CONF_FRAME_FIELD] = "invalid_frame_field"
    if errors or not is_payload_format(payload_format):
        return None
    config = MqttConfig(topic, payload_format, field)
    return {
        CONF_COMMAND: user_input[CONF_COMMAND],
        CONF_DEVICE: STDIN_DEVICE,
        # What wmbusmeters reads on its stdin: the checked frames as hex or rtl_wmbus lines.
        CONF_DEVICE_TYPE: config.line_format,
        CONF_LINK_MODES: [],
        CONF_MQTT_TOPIC: topic,
        CONF_PAYLOAD_FORMAT: payload_format,
        CONF_FRAME_FIELD: field,
    }


def mqtt_ready(hass: HomeAssistant) -> bool:
    """Whether Home Assistant's MQTT integration is set up (its client may be reconnecting:
    the receiver waits for it; it cannot wait for an integration nobody set up)."""
    return any(
        entry.state is ConfigEntryState.LOADED
        for entry in hass.config_entries.async_entries(MQTT_DOMAIN)
    )


class MqttSteps(ConfigFlow):
    """The config flow's steps `mqtt_raw` and `reconfigure_mqtt_raw` (not `mqtt`: that is
    Home Assistant's MQTT discovery step)."""

    async def _async_validate_mqtt(
        self, user_input: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        data = read_mqtt(user_input, errors)
        await probe_command(str(user_input[CONF_COMMAND]), errors)
        if data is None or errors:
            return {}, errors
        this = self.context.get("entry_id")
        for entry in receiver_entries(self.hass, exclude=this):
            if (other := mqtt_config(entry)) is not None and other.topic == data[CONF_MQTT_TOPIC]:
                return {}, {CONF_MQTT_TOPIC: "topic_in_use"}
        return data, {}

    async def async_step_mqtt_raw(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Raw frames that gateways publish to Home Assistant's MQTT broker."""
        if not mqtt_ready(self.hass):
            return self.async_abort(reason="mqtt_missing")
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = await self._async_validate_mqtt(user_input)
            if not errors:
                await self.async_set_unique_id(mqtt_unique_id(data))
                self._abort_if_unique_id_configured()
                return self.async_create_entry(title=mqtt_title(data[CONF_MQTT_TOPIC]), data=data)
        suggested = user_input or {
            CONF_COMMAND: await self.hass.async_add_executor_job(default_command),
            CONF_MQTT_TOPIC: DEFAULT_MQTT_TOPIC,
            CONF_PAYLOAD_FORMAT: "hex",
            CONF_FRAME_FIELD: DEFAULT_FIELD,
        }
        return self.async_show_form(
            step_id="mqtt_raw",
            data_schema=self.add_suggested_values_to_schema(mqtt_schema(), suggested),
            errors=errors,
            description_placeholders=await program_placeholders(suggested[CONF_COMMAND]),
        )

    async def async_step_reconfigure_mqtt_raw(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Another topic filter or format: the subscription follows at once; wmbusmeters
        restarts only when the lines it reads change (rtl_wmbus or hex) or its program."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = await self._async_validate_mqtt(user_input)
            if not errors:
                # The title follows the topic unless the user named the receiver.
                named = entry.title != mqtt_title(entry.data[CONF_MQTT_TOPIC])
                return self.async_update_and_abort(
                    entry,
                    unique_id=mqtt_unique_id(data),
                    title=entry.title if named else mqtt_title(data[CONF_MQTT_TOPIC]),
                    data_updates=data,
                )
        current = {
            CONF_COMMAND: entry.data[CONF_COMMAND],
            CONF_MQTT_TOPIC: entry.data[CONF_MQTT_TOPIC],
            CONF_PAYLOAD_FORMAT: entry.data[CONF_PAYLOAD_FORMAT],
            CONF_FRAME_FIELD: entry.data.get(CONF_FRAME_FIELD) or DEFAULT_FIELD,
        }
        return self.async_show_form(
            step_id="reconfigure_mqtt_raw",
            data_schema=self.add_suggested_values_to_schema(mqtt_schema(), user_input or current),
            errors=errors,
            description_placeholders=await program_placeholders(entry.data[CONF_COMMAND]),
        )
