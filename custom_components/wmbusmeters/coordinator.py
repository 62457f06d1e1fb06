"""Routes what a receiver's wmbusmeters says: each telegram to its meter (its entities, the
`wmbusmeters_telegram` event, a new field to the platforms), a meter nobody configured to
discovery, a decryption failure to issues. The process itself is the supervisor's.

Push, not poll: a telegram reaches only the listeners of its own meter, so one meter's reading
never wakes another meter's entities.
"""

from __future__ import annotations

import logging

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.util import dt as dt_util

from .availability import Availability, MeterWatch
from .const import DOMAIN, EVENT_TELEGRAM
from .discovery import MeterDiscovery
from .drivers import DriverCatalog
from .issues import ReceiverIssues
from .meters import Meters, MeterState, receiver_config
from .wmbus import DecryptionFailed, ReceiverConfig, Telegram, WmbusmetersInfo

_LOGGER = logging.getLogger(__name__)


def signal_meter_added(entry_id: str) -> str:
    """A meter subentry was added (its documented fields are known): `(meter)`."""
    return f"{DOMAIN}_{entry_id}_meter_added"


def signal_meter_retyped(entry_id: str) -> str:
    """A meter's driver changed (its new driver's fields and alarms are known): `(meter)`."""
    return f"{DOMAIN}_{entry_id}_meter_retyped"


def signal_new_fields(entry_id: str) -> str:
    """A telegram carries fields its meter has not offered yet: `(meter, telegram, fields)`."""
    return f"{DOMAIN}_{entry_id}_new_fields"


class WmbusCoordinator:
    """Routes one receiver's telegrams and meter events."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        *,
        info: WmbusmetersInfo,
        catalog: DriverCatalog,
        availability: Availability,
        issues: ReceiverIssues,
    ) -> None:
        """The meters as the subentries have them; nothing routed before async_start()."""
        self.hass = hass
        self.entry = entry
        self.version = info.version
        self.catalog = catalog
        self.availability = availability
        self.issues = issues
        self.meters = Meters(hass, entry, catalog)
        self.discovery = MeterDiscovery(hass, entry, catalog)
        self.watch = MeterWatch(hass, availability)
        self._signal_new_fields = signal_new_fields(entry.entry_id)
        self._closed = False
        self.meters.sync()

    async def async_start(self) -> None:
        """Check the meters' drivers against the binary's and learn their fields."""
        await self.async_prepare()
        for meter in self.meters.by_id.values():
            await self.meters.async_document(meter)
        self.watch.start(self.meters)

    async def async_prepare(self) -> ReceiverConfig:
        """What wmbusmeters is to run: each meter with a driver the binary has (a driver
        picked in a repair, or still rejected)."""
        if self.catalog.drivers:
            await self.meters.async_check_drivers(self.version)
            self._retype()  # a driver the binary renamed or rejects
        return self.receiver_config()

    def receiver_config(self) -> ReceiverConfig:
        """The receiver and its meters, as wmbusmeters is told."""
        return receiver_config(self.entry, self.meters.configs())

    @callback
    def close(self) -> None:
        """The receiver stops: no meter is watched or routed to any more."""
        self._closed = True
        self.watch.stop()
        self.meters.close()

    @callback
    def async_entry_updated(self) -> None:
        """Meters were added, changed or removed: they follow the subentries."""
        if self._closed:
            return  # the receiver stopped: its meters are gone until it loads again
        before = set(self.meters.by_id)
        for meter in self.meters.sync():
            self.watch.heard(meter)
            self.entry.async_create_background_task(
                self.hass, self._async_meter_added(meter), f"wmbusmeters {meter.meter_id}"
            )
        for meter_id in before - self.meters.by_id.keys():
            self.watch.forget(meter_id)  # a removed meter's watch ends with it
        self._retype()

    @callback
    def _retype(self) -> None:
        while self.meters.retyped:
            meter = self.meters.retyped.pop()
            self.entry.async_create_background_task(
                self.hass, self._async_meter_retyped(meter), f"wmbusmeters {meter.meter_id}"
            )

    async def _async_meter_retyped(self, meter: MeterState) -> None:
        await self.meters.async_document(meter)
        if self.meters.by_id.get(meter.meter_id) is meter:  # not removed meanwhile
            async_dispatcher_send(self.hass, signal_meter_retyped(self.entry.entry_id), meter)

    async def _async_meter_added(self, meter: MeterState) -> None:
        await self.meters.async_document(meter)
        if self.meters.by_id.get(meter.meter_id) is meter:  # not removed meanwhile
            async_dispatcher_send(self.hass, signal_meter_added(self.entry.entry_id), meter)

    @callback
    def handle_telegram(self, telegram: Telegram) -> None:
        """Update the meter, fire the event, push to its entities (runs for every telegram:
        dict and set look-ups only)."""
        meter = self.meters.by_id.get(telegram.meter_id)
        if meter is None:
            if telegram.discovered:
                self.discovery.offer(
                    telegram.meter_id, telegram.driver, telegram.media, encrypted=False
                )
            return
        now = dt_util.utcnow()
        if meter.last_seen is not None:
            meter.intervals.append((now - meter.last_seen).total_seconds())
        meter.last_seen = now
        meter.last_telegram = telegram
        # It decodes: a decryption issue of it clears itself (a fixed key).
        self.issues.meter_heard(meter.meter_id)
        if meter.config.polled or meter.meter_id in self.availability.lost:
            self.watch.heard(meter)  # back, or its polls watched afresh
        if telegram.driver and telegram.driver != meter.driver:
            meter.driver = telegram.driver
            self.meters.update_model(meter)
        readings = telegram.readings
        self.hass.bus.async_fire(
            EVENT_TELEGRAM,
            {
                "meter_id": meter.meter_id,
                "name": meter.name,
                "driver": telegram.driver,
                "media": telegram.media,
                "fields": readings,
            },
        )
        if not meter.fields.issuperset(readings):
            # A null is no value yet: its entity comes with a real one.
            new = [f for f, v in readings.items() if v is not None and f not in meter.fields]
            if new:
                meter.fields.update(new)
                async_dispatcher_send(self.hass, self._signal_new_fields, meter, telegram, new)
        meter.notify(telegram)

    @callback
    def handle_event(self, event: DecryptionFailed) -> None:
        """wmbusmeters cannot decrypt a meter: a neighbour's is offered (a key will be
        needed), a configured one gets its repair."""
        meter = self.meters.by_id.get(event.meter_id)
        if meter is None:
            self.discovery.offer(event.meter_id, "auto", "", encrypted=True)
            return
        self.issues.decryption_failed(
            subentry_id=meter.subentry_id,
            meter_id=meter.meter_id,
            name=meter.name,
            problem=event.problem,
            key=bool(meter.config.key),
        )
