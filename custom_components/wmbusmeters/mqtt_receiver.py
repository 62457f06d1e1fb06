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
import weakref

from homeassistant.components import mqtt
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers.event import async_call_later

from .const import DOMAIN
from .wmbus.mqtt_frames import FrameGate, MqttConfig

_LOGGER = logging.getLogger(__name__)


async def async_wait_for_mqtt(hass: HomeAssistant) -> None:
    """Return once Home Assistant's MQTT client is there (it may still be connecting);
    ConfigEntryNotReady, saying which, while MQTT is not set up or not loaded (Home Assistant
    sets the receiver up again later)."""
    if await mqtt.async_wait_for_mqtt_client(hass):
        return
    # Set up but not loaded (its broker refused it, it is still retrying) or not set up at all.
    set_up = any(not entry.disabled_by for entry in hass.config_entries.async_entries(mqtt.DOMAIN))
    raise ConfigEntryNotReady(
        translation_domain=DOMAIN,
        translation_key="mqtt_not_loaded" if set_up else "mqtt_missing",
    )


def _relay(owner: MqttFrames, generation: int) -> Callable[[mqtt.ReceiveMessage], None]:
    """What the subscription calls: it holds the receiver weakly. Reloading Home Assistant's
    MQTT integration moves every subscription to its new client, where the unsubscribe the
    receiver holds no longer reaches it: such a subscription then finds nothing here (an
    unloaded receiver is neither kept alive by it nor fed), and its generation is not the
    current one, so the current subscription alone is read."""
    ref = weakref.ref(owner)

    @callback
    def relay(msg: mqtt.ReceiveMessage) -> None:
        if (frames := ref()) is not None and frames.generation == generation:
            frames.message(msg)

    return relay


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
        #: Subscribed and not stopped: messages are read.
        self._active = False
        #: Which subscription is read: each new one (and the stop) counts up.
        self.generation = 0
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
        await async_wait_for_mqtt(self.hass)
        self._active = True
        self._unsub_status = mqtt.async_subscribe_connection_status(self.hass, self._link)
        await self._async_subscribe()
        self._link(mqtt.is_connected(self.hass))

    async def _async_subscribe(self) -> None:
        # Bytes as they came (encoding=None): a payload is checked, never decoded as text first.
        self.generation += 1
        self._unsub = await mqtt.async_subscribe(
            self.hass, self.config.topic, _relay(self, self.generation), qos=0, encoding=None
        )

    async def async_apply(self, config: MqttConfig) -> None:
        """Another topic filter: subscribe anew; another payload format alone: the same
        subscription reads it. The counters stay, and wmbusmeters is not restarted unless
        the lines it reads changed (the caller's part)."""
        if config == self.config:
            return
        topic_changed = config.topic != self.config.topic
        self.gate.config = config
        if not topic_changed:
            return  # the same subscription reads the new format
        if self._unsub is not None:
            self._unsub()
            self._unsub = None
        await self._async_subscribe()

    @callback
    def async_stop(self) -> None:
        """Unsubscribe; frames still held are dropped with the receiver."""
        self._active = False
        self.generation += 1
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
    def message(self, msg: mqtt.ReceiveMessage) -> None:
        """One message of the current subscription (through _relay)."""
        if not self._active:
            return
        payload = msg.payload
        if not isinstance(payload, bytes):  # (bytes for encoding=None; others tolerated)
            payload = bytes(payload) if isinstance(payload, bytearray) else str(payload).encode()
        if self.gate.take(msg.topic, payload, retained=msg.retain, now=time.monotonic()):
            self._schedule_flush()
        self._on_change()

    def _schedule_flush(self) -> None:
        if self._unsub_flush is None and self._active:
            now = time.monotonic()
            due = self.gate.flush(now)
            if due is not None:
                self._unsub_flush = async_call_later(self.hass, max(due - now, 0.0), self._flush)

    @callback
    def _flush(self, _now: object) -> None:
        self._unsub_flush = None
        self._schedule_flush()
        self._on_change()

    def rssi_for(self, meter_id: str) -> int | None:
        """The best gateway's RSSI of the frame a meter's telegram came from, once."""
        return self.gate.rssi_for(meter_id, time.monotonic())
