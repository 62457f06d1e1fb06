"""An MQTT receiver's subscription: raw frames that ESP32 gateways and bridges publish to the
broker Home Assistant's own MQTT integration is connected to, each checked (wmbus/mqtt_frames)
and fed to the receiver's wmbusmeters as a network receiver's lines are.

Only this module imports Home Assistant's MQTT integration, and only an MQTT receiver imports
this module: the other receivers neither need MQTT nor wait for it.
"""

from __future__ import annotations

from collections.abc import Callable
import logging
import time

from homeassistant.components import mqtt
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers.event import async_call_later

from .const import DOMAIN
from .wmbus.mqtt_frames import FrameGate, MqttConfig

_LOGGER = logging.getLogger(__name__)


class MqttFrames:
    """Subscribes to the receiver's topic filter and hands each frame on; tells the receiver
    when the broker connection comes and goes, and when its counters change."""

    def __init__(
        self,
        hass: HomeAssistant,
        config: MqttConfig,
        deliver: Callable[[bytes], bool],
        on_change: Callable[[], None],
        on_link: Callable[[bool], None],
    ) -> None:
        """Nothing is subscribed until async_start()."""
        self.hass = hass
        self.gate = FrameGate(config, deliver)
        self._on_change = on_change
        self._on_link = on_link
        #: Whether MQTT is connected to its broker (None: not asked yet).
        self.connected: bool | None = None
        self._unsub: CALLBACK_TYPE | None = None
        self._unsub_status: CALLBACK_TYPE | None = None
        self._unsub_flush: CALLBACK_TYPE | None = None

    @property
    def config(self) -> MqttConfig:
        """The topic filter and payload format subscribed with."""
        return self.gate.config

    async def async_start(self) -> None:
        """Subscribe; ConfigEntryNotReady while Home Assistant's MQTT is not set up (the
        receiver is set up again by Home Assistant once it may be)."""
        if not await mqtt.async_wait_for_mqtt_client(self.hass):
            raise ConfigEntryNotReady(translation_domain=DOMAIN, translation_key="mqtt_missing")
        self._unsub_status = mqtt.async_subscribe_connection_status(self.hass, self._link)
        await self._async_subscribe()
        self._link(mqtt.is_connected(self.hass))

    async def _async_subscribe(self) -> None:
        # Bytes as they came (encoding=None): a payload is checked, never decoded as text first.
        self._unsub = await mqtt.async_subscribe(
            self.hass, self.config.topic, self._message, qos=0, encoding=None
        )

    async def async_apply(self, config: MqttConfig) -> None:
        """Another topic filter or payload format: subscribe anew (the counters stay, and
        wmbusmeters is not restarted unless what it reads changed, which the caller knows)."""
        if config == self.config:
            return
        if self._unsub is not None:
            self._unsub()
            self._unsub = None
        self.gate.config = config
        await self._async_subscribe()

    @callback
    def async_stop(self) -> None:
        """Unsubscribe; frames still held are dropped with the receiver."""
        for unsub in (self._unsub, self._unsub_status, self._unsub_flush):
            if unsub is not None:
                unsub()
        self._unsub = self._unsub_status = self._unsub_flush = None

    @callback
    def _link(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self._on_link(connected)

    @callback
    def _message(self, msg: mqtt.ReceiveMessage) -> None:
        payload = msg.payload
        if not isinstance(payload, bytes):  # (bytes for encoding=None; others tolerated)
            payload = bytes(payload) if isinstance(payload, bytearray) else str(payload).encode()
        if self._unsub is None:
            return  # a message already queued when the subscription ended
        if self.gate.take(msg.topic, payload, retained=msg.retain, now=time.time()):
            self._schedule_flush()
        self._on_change()

    def _schedule_flush(self) -> None:
        if self._unsub_flush is None:
            due = self.gate.flush(time.time())
            if due is not None:
                self._unsub_flush = async_call_later(
                    self.hass, max(due - time.time(), 0.0), self._flush
                )

    @callback
    def _flush(self, _now: object) -> None:
        self._unsub_flush = None
        self._schedule_flush()
        self._on_change()

    def rssi_for(self, meter_id: str) -> int | None:
        """The best gateway's RSSI of the frame a meter's telegram came from, once."""
        return self.gate.rssi_for(meter_id)
