"""A receiver's meters: their state, kept in line with the entry's meter subentries.

Each meter carries its own listeners and clean-ups, which end with it: a meter removed and
added again starts from nothing, with no listener of its earlier life left to answer for it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
import logging
import statistics

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util

from .compat import find_device
from .const import (
    CONF_ALLOWED_SOURCES,
    CONF_BAUD_RATE,
    CONF_DEVICE,
    CONF_DEVICE_TYPE,
    CONF_DRIVER,
    CONF_FRAME_FIELD,
    CONF_KEY,
    CONF_LINK_MODES,
    CONF_LISTEN_HOST,
    CONF_LISTEN_PORT,
    CONF_LISTEN_PROTOCOL,
    CONF_METER_ID,
    CONF_MQTT_TOPIC,
    CONF_PAYLOAD_FORMAT,
    CONF_POLL_INTERVAL,
    CONF_PRIMARY_ADDRESS,
    CONF_RTL_FREQUENCY,
    CONF_RTL_PPM,
    CONF_RTL_SERIAL,
    DEFAULT_BAUD_RATE,
    DOMAIN,
    MIN_SILENCE_BEFORE_UNAVAILABLE,
    SUBENTRY_METER,
)
from .drivers import DriverCatalog
from .issues import (
    async_clear_duplicate_meter_issues,
    async_clear_meter_issues,
    async_clear_unknown_driver_issue,
    async_raise_duplicate_meter_issue,
    async_raise_unknown_driver_issue,
)
from .wmbus import RTL_DEVICES, MeterConfig, ReceiverConfig, Telegram
from .wmbus.alarms import AlarmKind
from .wmbus.config import MBUS, STDIN_DEVICE, RtlOptions
from .wmbus.listener import ListenerConfig
from .wmbus.mqtt_frames import DEFAULT_FIELD, MqttConfig
from .wmbus.upgrades import renamed_driver

_LOGGER = logging.getLogger(__name__)

type MeterListener = Callable[[Telegram], None]


@dataclass(slots=True, eq=False)
class MeterState:
    """One configured meter and what has been heard from it."""

    subentry_id: str
    name: str
    config: MeterConfig
    #: Fields wmbusmeters documents for the configured driver (diagnostics, removed fields).
    documented_fields: list[str] = field(default_factory=list)
    #: The alarm sensors the configured driver gives (DriverCatalog.async_alarms); None while
    #: not known (`auto`: its telegrams name the driver; a binary that could not say).
    alarms: frozenset[AlarmKind] | None = None
    last_telegram: Telegram | None = None
    last_seen: datetime | None = None
    #: When this meter was added (or its receiver loaded): its silence counts from here.
    since: datetime = field(default_factory=dt_util.utcnow)
    intervals: deque[float] = field(default_factory=lambda: deque(maxlen=16))
    #: Fields offered to the platforms (with a value): a telegram with another one announces
    #: it. A platform that lets a field's entity go discards it, to be offered again.
    fields: set[str] = field(default_factory=set)
    #: Listener calls that raised (caught in notify()).
    listener_errors: int = 0
    #: The meter left (its subentry was removed or the receiver unloaded).
    closed: bool = False
    #: The driver wmbusmeters reports (differs from the configured one for `auto`).
    driver: str = ""
    #: A tuple, replaced on change: notify() iterates it without a copy per telegram.
    _listeners: tuple[MeterListener, ...] = ()
    _on_remove: list[CALLBACK_TYPE] = field(default_factory=list)

    @property
    def meter_id(self) -> str:
        """The meter's 8-hex-digit id."""
        return self.config.meter_id

    def expected_silence(self) -> float:
        """Seconds of silence after which the meter counts as lost.

        Three times its usual spacing, never less than the floor (battery meters sleep).
        """
        if not self.intervals:
            return MIN_SILENCE_BEFORE_UNAVAILABLE
        return max(MIN_SILENCE_BEFORE_UNAVAILABLE, 3 * statistics.median(self.intervals))

    @callback
    def async_add_listener(self, listener: MeterListener) -> CALLBACK_TYPE:
        """Call `listener(telegram)` for each telegram of this meter.

        A plain list rather than a dispatcher signal: it is called for every entity of every
        telegram (scripts/benchmark), and ends with the meter."""
        self._listeners = (*self._listeners, listener)

        def remove() -> None:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

        return remove

    @callback
    def async_on_remove(self, func: CALLBACK_TYPE) -> None:
        """Run `func` when this meter leaves (its subentry is removed, the receiver unloads)."""
        self._on_remove.append(func)

    def notify(self, telegram: Telegram) -> None:
        """Tell this meter's listeners. One that fails (a value Home Assistant refuses) is
        logged with its entity; the others, and the next telegram, go on."""
        for listener in self._listeners:
            try:
                listener(telegram)
            except Exception:
                self.listener_errors += 1
                if self.listener_errors <= 5 or self.listener_errors % 1000 == 0:
                    owner = getattr(listener, "__self__", None)
                    _LOGGER.exception(
                        "Meter %s (%s): %s could not take its telegram (%d errors so far)",
                        self.name,
                        self.meter_id,
                        getattr(owner, "entity_id", None) or getattr(listener, "__name__", "?"),
                        self.listener_errors,
                    )

    def close(self) -> None:
        """The meter leaves: its listeners and clean-ups end with it."""
        self.closed = True
        self._listeners = ()
        while self._on_remove:
            self._on_remove.pop()()


def meter_config(subentry: ConfigSubentry, rejected: Collection[str] = ()) -> MeterConfig:
    """The wmbusmeters view of a meter subentry.

    A driver the binary rejects (removed in its release) would stop wmbusmeters for every
    meter of the receiver: such a meter is read with `auto` until the user picks its
    replacement (the unknown_driver repair).
    """
    driver: str = subentry.data[CONF_DRIVER]
    if driver in rejected:
        driver = "auto"
    return MeterConfig(
        meter_id=subentry.data[CONF_METER_ID],
        driver=driver,
        key=subentry.data.get(CONF_KEY, ""),
        poll_interval=subentry.data.get(CONF_POLL_INTERVAL, 0),
        primary_address=subentry.data.get(CONF_PRIMARY_ADDRESS),
    )


def meter_subentries(entry: ConfigEntry) -> list[ConfigSubentry]:
    """The entry's meter subentries."""
    return [sub for sub in entry.subentries.values() if sub.subentry_type == SUBENTRY_METER]


def receiver_entries(hass: HomeAssistant, *, exclude: str | None = None) -> list[ConfigEntry]:
    """The receivers, without `exclude` (an entry id). An ignored discovery (a neighbour's
    meter, a dongle) is a config entry of this domain too, with empty data: never one of them
    (CONTRACT.md)."""
    return [
        entry
        for entry in hass.config_entries.async_entries(DOMAIN, include_ignore=False)
        if entry.entry_id != exclude and CONF_DEVICE in entry.data
    ]


def meter_owner(hass: HomeAssistant, meter_id: str) -> ConfigEntry | None:
    """The receiver that holds a meter id: the first one that has it (CONTRACT.md: a meter id
    is configured once in the whole integration)."""
    for entry in receiver_entries(hass):
        if any(sub.unique_id == meter_id for sub in meter_subentries(entry)):
            return entry
    return None


def receiver_config(entry: ConfigEntry, meters: Collection[MeterConfig]) -> ReceiverConfig:
    """The wmbusmeters view of a receiver entry and its meters.

    With a catch-all meter, so that meters nobody configured are heard and offered (discovery):
    2.0.0 drops other meters' telegrams silently once any meter is configured.
    """
    device_type = entry.data.get(CONF_DEVICE_TYPE, "")
    device = entry.data[CONF_DEVICE]
    # The tuning of an RTL-SDR stick only: a receiver moved off one by a reconfigure of
    # 0.1.0 kept its keys, which no other radio takes.
    rtl = (
        RtlOptions(
            serial=entry.data.get(CONF_RTL_SERIAL) or "",
            ppm=entry.data.get(CONF_RTL_PPM) or 0,
            frequency_mhz=entry.data.get(CONF_RTL_FREQUENCY),
        )
        if device in RTL_DEVICES
        else RtlOptions()
    )
    return ReceiverConfig(
        # A wired bus has no unasked telegrams (and a polled meter's own answer would be
        # handed to a catch-all under its real id).
        listen_all=device_type != MBUS,
        device=device,
        device_type=device_type,
        baud_rate=entry.data.get(CONF_BAUD_RATE, DEFAULT_BAUD_RATE),
        link_modes=tuple(entry.data.get(CONF_LINK_MODES, ())),
        meters=tuple(meters),
        rtl=rtl,
    )


def listener_config(entry: ConfigEntry) -> ListenerConfig | None:
    """A network receiver's port and what it lets through; None for any other receiver."""
    if entry.data.get(CONF_DEVICE) != STDIN_DEVICE or CONF_MQTT_TOPIC in entry.data:
        return None
    return ListenerConfig(
        host=entry.data[CONF_LISTEN_HOST],
        port=entry.data[CONF_LISTEN_PORT],
        protocol=entry.data[CONF_LISTEN_PROTOCOL],
        line_format=entry.data[CONF_DEVICE_TYPE],
        allowed=tuple(entry.data.get(CONF_ALLOWED_SOURCES, ())),
    )


def mqtt_config(entry: ConfigEntry) -> MqttConfig | None:
    """An MQTT receiver's subscription; None for any other receiver."""
    if CONF_MQTT_TOPIC not in entry.data:
        return None
    return MqttConfig(
        topic=entry.data[CONF_MQTT_TOPIC],
        payload_format=entry.data[CONF_PAYLOAD_FORMAT],
        field=entry.data.get(CONF_FRAME_FIELD) or DEFAULT_FIELD,
    )


class Meters:
    """The meters of one receiver, by meter id."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, catalog: DriverCatalog) -> None:
        """Empty until sync()."""
        self.hass = hass
        self.entry = entry
        self.catalog = catalog
        self.by_id: dict[str, MeterState] = {}
        #: Configured drivers the binary rejects (read with `auto` meanwhile).
        self.rejected: set[str] = set()
        #: Meters whose driver sync() changed (a reconfigure, a repair), to be documented
        #: again: taken by the coordinator.
        self.retyped: list[MeterState] = []

    def configs(self) -> tuple[MeterConfig, ...]:
        """What wmbusmeters is told about the meters."""
        return tuple(meter.config for meter in self.by_id.values())

    def sync(self) -> list[MeterState]:
        """Bring the meters in line with the subentries; return the new ones.

        A meter another receiver holds already (saved before the flows refused it) is left
        out, with a repair issue: two receivers would give its entities the same unique ids.
        """
        current: dict[str, MeterState] = {}
        added = []
        duplicates: set[str] = set()
        for subentry in meter_subentries(self.entry):
            config = meter_config(subentry, self.rejected)
            owner = meter_owner(self.hass, config.meter_id)
            if owner is not None and owner.entry_id != self.entry.entry_id:
                async_raise_duplicate_meter_issue(
                    self.hass,
                    entry_id=self.entry.entry_id,
                    subentry_id=subentry.subentry_id,
                    meter_id=config.meter_id,
                    name=subentry.title,
                    receiver=self.entry.title,
                    owner=owner.title,
                )
                duplicates.add(config.meter_id)
                continue
            meter = self.by_id.get(config.meter_id)
            if meter is None or meter.subentry_id != subentry.subentry_id:
                meter = MeterState(
                    subentry.subentry_id, subentry.title, config, driver=config.driver
                )
                added.append(meter)
            if meter.name != subentry.title:
                meter.name = subentry.title
                self._rename_device(meter)
            if meter.config != config:
                if meter.config.driver != config.driver and meter not in added:
                    meter.alarms = None  # another driver's: learnt again (retyped)
                    self.retyped.append(meter)
                meter.config = config
                meter.driver = config.driver
            current[config.meter_id] = meter
        for meter_id, meter in self.by_id.items():
            if current.get(meter_id) is not meter:
                meter.close()
                if meter.subentry_id not in self.entry.subentries:
                    async_clear_meter_issues(self.hass, self.entry.entry_id, meter_id)
        async_clear_duplicate_meter_issues(self.hass, self.entry.entry_id, keep=duplicates)
        self.by_id = current
        return added

    def close(self) -> None:
        """The receiver unloads: every meter's listeners end (its issues stay)."""
        for meter in self.by_id.values():
            meter.close()
        self.by_id = {}

    async def async_check_drivers(self, version: str) -> None:
        """Meters whose driver this binary does not list (an upgrade of wmbusmeters).

        A renamed driver follows in the subentry (the device keeps its id, entities and
        statistics; its model follows with the first telegram). An alias the binary still
        accepts (multical603) stays. A driver it rejects is read with `auto` and gets a
        fixable repair to pick its replacement.
        """
        known = self.catalog.drivers.keys()
        self.rejected.clear()
        for subentry in meter_subentries(self.entry):
            driver = subentry.data[CONF_DRIVER]
            meter_id = subentry.data[CONF_METER_ID]
            if new := renamed_driver(driver, known):
                _LOGGER.info(
                    "Meter %s: wmbusmeters %s calls driver %s %s now",
                    subentry.title,
                    version,
                    driver,
                    new,
                )
                self.hass.config_entries.async_update_subentry(
                    self.entry, subentry, data={**subentry.data, CONF_DRIVER: new}
                )
            elif (
                driver != "auto"
                and driver not in known
                and not await self.catalog.async_fields(driver)
            ):
                _LOGGER.warning(
                    "Meter %s: wmbusmeters %s has no driver %s; reading it with auto",
                    subentry.title,
                    version,
                    driver,
                )
                self.rejected.add(driver)
                async_raise_unknown_driver_issue(
                    self.hass,
                    entry_id=self.entry.entry_id,
                    subentry_id=subentry.subentry_id,
                    meter_id=meter_id,
                    name=subentry.title,
                    driver=driver,
                )
                continue
            async_clear_unknown_driver_issue(self.hass, meter_id)
        self.sync()

    async def async_document(self, meter: MeterState) -> None:
        """Learn the fields the meter's driver documents, and the alarms it can raise (before
        the platforms follow the meter: its alarm sensors are there from the start)."""
        driver = meter.config.driver
        fields = await self.catalog.async_fields(driver)
        alarms = await self.catalog.async_alarms(driver) if driver != "auto" else None
        if meter.config.driver == driver:  # (not given another driver meanwhile)
            meter.documented_fields = [info.name for info in fields]
            meter.alarms = alarms

    # -- devices ----------------------------------------------------------------------------

    def _rename_device(self, meter: MeterState) -> None:
        """A renamed meter subentry renames its device (unless the user named the device)."""
        registry = dr.async_get(self.hass)
        device = find_device(registry, (DOMAIN, meter.meter_id), self.entry.entry_id)
        if device is not None and device.name != meter.name:
            registry.async_update_device(device.id, name=meter.name)

    def update_model(self, meter: MeterState) -> None:
        """The driver wmbusmeters reports is the device's model."""
        registry = dr.async_get(self.hass)
        device = find_device(registry, (DOMAIN, meter.meter_id), self.entry.entry_id)
        if device is not None and device.model != meter.driver:
            registry.async_update_device(
                device.id, model=meter.driver, manufacturer=self.catalog.manufacturer(meter.driver)
            )
