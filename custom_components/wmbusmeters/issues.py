"""The integration's repair issues: when each is raised and cleared, in HA's issue registry.

The registry is the record of which issues are open, so an issue survives a restart of Home
Assistant exactly as the registry keeps it. A receiver's ReceiverIssues follows the registry's
own events to answer "is it open?" per telegram without a registry look-up. Every issue
carries the receiver's entry id in its data, so deleting a receiver (or a meter) deletes its
issues. The fix flows are in repairs.py.
"""

from __future__ import annotations

from collections.abc import Collection
import logging

from homeassistant.components import persistent_notification
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.translation import async_get_translations

from .const import DOMAIN
from .wmbus import DecryptionProblem, RunnerStatus

_LOGGER = logging.getLogger(__name__)

ISSUE_DECRYPTION = "decryption_failed"
ISSUE_UNKNOWN_DRIVER = "unknown_driver"
ISSUE_REMOVED_FIELDS = "fields_removed"
ISSUE_DUPLICATE_METER = "duplicate_meter"
ISSUE_DEVICE_TYPE = "device_type_missing"
#: The bundled wmbusmeters' folder does not match the release's checksums.
ISSUE_BUNDLED_ALTERED = "bundled_altered"
#: Receiver problems that clear themselves when the receiver works again.
RECEIVER_ISSUES = ("command_missing", "device_missing", "crash_loop")
#: Meter issues, each named `<kind>_<meter_id>`.
METER_ISSUES = (ISSUE_DECRYPTION, ISSUE_UNKNOWN_DRIVER, ISSUE_REMOVED_FIELDS)
#: Crash loop: this many unexpected ends of wmbusmeters in a row, with no stable run between
#: (counted by the runner whatever its backoff: 5 → 300 s makes any time window miss it).
CRASH_LOOP_COUNT = 5
#: Longest last error a repair shows.
MAX_ISSUE_TEXT = 200


def meter_issue_id(kind: str, meter_id: str) -> str:
    """A meter's issue id (CONTRACT.md: `decryption_failed_<meter_id>`)."""
    return f"{kind}_{meter_id}"


def decryption_issue_id(meter_id: str) -> str:
    """The decryption repair issue id of a meter (CONTRACT.md)."""
    return meter_issue_id(ISSUE_DECRYPTION, meter_id)


def receiver_issue_id(kind: str, entry_id: str) -> str:
    """A receiver's issue id."""
    return f"{kind}_{entry_id}"


def duplicate_issue_id(entry_id: str, meter_id: str) -> str:
    """The issue of a meter a second receiver holds as well (one per receiver and meter)."""
    return f"{ISSUE_DUPLICATE_METER}_{entry_id}_{meter_id}"


def is_open(hass: HomeAssistant, issue_id: str) -> bool:
    """Whether the issue is in the registry (a dict lookup: cheap enough per telegram)."""
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None


def _create(
    hass: HomeAssistant,
    issue_id: str,
    kind: str,
    placeholders: dict[str, str],
    data: dict[str, str | int | float | None],
    *,
    severity: ir.IssueSeverity = ir.IssueSeverity.WARNING,
) -> None:
    """A fixable issue that lasts as long as this HA run (its cause is checked again at the
    next start)."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=True,
        is_persistent=False,
        severity=severity,
        translation_key=kind,
        translation_placeholders=placeholders,
        data=data,
    )


def effective_problem(problem: DecryptionProblem, has_key: bool) -> DecryptionProblem:
    """What the user has to do.

    2.0.0 says "did you use the correct decryption key?" also for an encrypted meter that has no
    key at all (compact frames): that is a missing key, not a wrong one.
    """
    if problem is DecryptionProblem.WRONG_KEY and not has_key:
        return DecryptionProblem.MISSING_KEY
    return problem


@callback
def async_raise_decryption_issue(
    hass: HomeAssistant,
    *,
    entry_id: str,
    subentry_id: str,
    meter_id: str,
    name: str,
    problem: DecryptionProblem,
) -> None:
    """A fixable issue for the meter, and a notification the first time."""
    issue_id = decryption_issue_id(meter_id)
    first = not is_open(hass, issue_id)
    _create(
        hass,
        issue_id,
        ISSUE_DECRYPTION,
        {"name": name, "meter_id": meter_id},
        {
            "entry_id": entry_id,
            "subentry_id": subentry_id,
            "meter_id": meter_id,
            "problem": problem.value,
        },
        severity=ir.IssueSeverity.ERROR,
    )
    if first:
        hass.async_create_task(_async_notify(hass, meter_id, name, problem), eager_start=True)


@callback
def async_clear_decryption_issue(hass: HomeAssistant, meter_id: str) -> None:
    """The meter decodes again: the issue and its notification go away."""
    ir.async_delete_issue(hass, DOMAIN, decryption_issue_id(meter_id))
    persistent_notification.async_dismiss(hass, f"{DOMAIN}_{decryption_issue_id(meter_id)}")


async def _async_notify(
    hass: HomeAssistant, meter_id: str, name: str, problem: DecryptionProblem
) -> None:
    """A persistent notification in the user's language, linking to the repair."""
    translations = await async_get_translations(hass, hass.config.language, "issues", [DOMAIN])
    prefix = f"component.{DOMAIN}.issues.{ISSUE_DECRYPTION}"
    title = translations.get(f"{prefix}.title", "Meter {name} cannot be read")
    message = translations.get(
        f"{prefix}.fix_flow.step.{problem.value}.description",
        "wmbusmeters cannot decrypt meter {name} ({meter_id}).",
    )
    placeholders = {"name": name, "meter_id": meter_id}
    persistent_notification.async_create(
        hass,
        message.format(**placeholders) + "\n\n[Settings → Repairs](/config/repairs)",
        title=title.format(**placeholders),
        notification_id=f"{DOMAIN}_{decryption_issue_id(meter_id)}",
    )


@callback
def async_raise_receiver_issue(
    hass: HomeAssistant, entry_id: str, kind: str, placeholders: dict[str, str]
) -> None:
    """A receiver problem (command_missing, device_missing, crash_loop); not fixable here,
    it clears itself when the receiver works again."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        receiver_issue_id(kind, entry_id),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=kind,
        translation_placeholders=placeholders,
        data={"entry_id": entry_id},
    )


@callback
def async_clear_receiver_issue(hass: HomeAssistant, entry_id: str, kind: str) -> None:
    """The receiver works again (nothing happens if the issue is not open)."""
    ir.async_delete_issue(hass, DOMAIN, receiver_issue_id(kind, entry_id))


@callback
def async_raise_unknown_driver_issue(
    hass: HomeAssistant, *, entry_id: str, subentry_id: str, meter_id: str, name: str, driver: str
) -> None:
    """wmbusmeters has no such driver (removed in its release): pick a replacement."""
    _create(
        hass,
        meter_issue_id(ISSUE_UNKNOWN_DRIVER, meter_id),
        ISSUE_UNKNOWN_DRIVER,
        {"name": name, "driver": driver},
        {"entry_id": entry_id, "subentry_id": subentry_id},
    )


@callback
def async_clear_unknown_driver_issue(hass: HomeAssistant, meter_id: str) -> None:
    """The meter's driver is known (again, or replaced)."""
    ir.async_delete_issue(hass, DOMAIN, meter_issue_id(ISSUE_UNKNOWN_DRIVER, meter_id))


@callback
def async_raise_removed_fields_issue(
    hass: HomeAssistant,
    *,
    entry_id: str,
    meter_id: str,
    name: str,
    entity_ids: list[str],
    version: str,
) -> None:
    """Entities whose field the running wmbusmeters neither documents nor sends (removed in
    its release): they would keep their last value for good. Offer to remove them."""
    _create(
        hass,
        meter_issue_id(ISSUE_REMOVED_FIELDS, meter_id),
        ISSUE_REMOVED_FIELDS,
        {"name": name},
        {
            "entry_id": entry_id,
            "name": name,
            "version": version,
            "entity_ids": ",".join(entity_ids),
        },
    )


@callback
def async_clear_removed_fields_issue(hass: HomeAssistant, meter_id: str) -> None:
    """Every entity of the meter is a reading wmbusmeters has."""
    ir.async_delete_issue(hass, DOMAIN, meter_issue_id(ISSUE_REMOVED_FIELDS, meter_id))


@callback
def async_raise_duplicate_meter_issue(
    hass: HomeAssistant,
    *,
    entry_id: str,
    subentry_id: str,
    meter_id: str,
    name: str,
    receiver: str,
    owner: str,
) -> None:
    """A meter this receiver holds although another one (`owner`) has it: saved before the
    flows refused it. Its entities stay with the owner; the fix removes this copy."""
    placeholders = {"name": name, "meter_id": meter_id, "receiver": receiver, "owner": owner}
    _create(
        hass,
        duplicate_issue_id(entry_id, meter_id),
        ISSUE_DUPLICATE_METER,
        placeholders,
        {"entry_id": entry_id, "subentry_id": subentry_id, **placeholders},
    )


@callback
def async_raise_device_type_issue(
    hass: HomeAssistant, entry_id: str, title: str, device: str
) -> None:
    """A receiver saved with a bare serial port (before the flow asked for the dongle's type):
    wmbusmeters cannot start on it. The fix asks for the type."""
    _create(
        hass,
        receiver_issue_id(ISSUE_DEVICE_TYPE, entry_id),
        ISSUE_DEVICE_TYPE,
        {"title": title, "device": device},
        {"entry_id": entry_id, "title": title, "device": device},
        severity=ir.IssueSeverity.ERROR,
    )


@callback
def async_clear_duplicate_meter_issues(
    hass: HomeAssistant, entry_id: str, keep: Collection[str]
) -> None:
    """The receiver's duplicate issues, except those of the meter ids in `keep` (its copy was
    removed, or it holds the meter alone now)."""
    prefix = duplicate_issue_id(entry_id, "")
    stale = [
        issue_id
        for (domain, issue_id) in ir.async_get(hass).issues
        if domain == DOMAIN
        and issue_id.startswith(prefix)
        and issue_id.removeprefix(prefix) not in keep
    ]
    for issue_id in stale:
        ir.async_delete_issue(hass, DOMAIN, issue_id)


@callback
def async_clear_meter_issues(hass: HomeAssistant, entry_id: str, meter_id: str) -> None:
    """A meter left its receiver: none of its issues applies any more."""
    for kind in METER_ISSUES:
        issue_id = meter_issue_id(kind, meter_id)
        issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
        if issue is not None and (issue.data or {}).get("entry_id") == entry_id:
            ir.async_delete_issue(hass, DOMAIN, issue_id)
    persistent_notification.async_dismiss(hass, f"{DOMAIN}_{decryption_issue_id(meter_id)}")
    ir.async_delete_issue(hass, DOMAIN, duplicate_issue_id(entry_id, meter_id))


@callback
def async_clear_receiver_issues(hass: HomeAssistant, entry_id: str) -> None:
    """A receiver was deleted: every issue of it and its meters goes."""
    registry = ir.async_get(hass)
    mine = [
        issue_id
        for (domain, issue_id), issue in registry.issues.items()
        if domain == DOMAIN
        and ((issue.data or {}).get("entry_id") == entry_id or issue_id.endswith(entry_id))
    ]
    for issue_id in mine:
        if issue_id.startswith(f"{ISSUE_DECRYPTION}_"):
            persistent_notification.async_dismiss(hass, f"{DOMAIN}_{issue_id}")
        ir.async_delete_issue(hass, DOMAIN, issue_id)


class ReceiverIssues:
    """When one receiver's issues, and its meters' decryption issues, are raised and cleared.

    Which of them are open is read from the registry once and then kept from its events (a
    fix flow or another receiver may delete one): a telegram costs two set look-ups.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str, title: str) -> None:
        """Read what is open now; start() follows the registry's events."""
        self.hass = hass
        self.entry_id = entry_id
        self.title = title
        self._receiver_ids = {receiver_issue_id(kind, entry_id): kind for kind in RECEIVER_ISSUES}
        #: Open receiver issues of this receiver (kinds).
        self._receiver_open: set[str] = set()
        #: Meters reported unreadable and not heard decoding since.
        self._unreadable: set[str] = set()
        #: Meters whose decryption failure was reported in the current wmbusmeters run (2.0.0
        #: says it once per run; a restart with a fixed key may say it again).
        self._reported_this_run: set[str] = set()
        for domain, issue_id in ir.async_get(hass).issues:
            if domain == DOMAIN:
                self._follow(issue_id, open_=True)

    @callback
    def start(self) -> CALLBACK_TYPE:
        """Follow the registry; the returned callable stops it."""

        @callback
        def _changed(event: Event[ir.EventIssueRegistryUpdatedData]) -> None:
            if event.data["domain"] == DOMAIN:
                self._follow(event.data["issue_id"], open_=event.data["action"] != "remove")

        return self.hass.bus.async_listen(ir.EVENT_REPAIRS_ISSUE_REGISTRY_UPDATED, _changed)

    def _follow(self, issue_id: str, *, open_: bool) -> None:
        if (kind := self._receiver_ids.get(issue_id)) is not None:
            if open_:
                self._receiver_open.add(kind)
            else:
                self._receiver_open.discard(kind)
        elif open_ and issue_id.startswith(f"{ISSUE_DECRYPTION}_"):
            # Not dropped when the issue goes: a submitted fix flow deletes it, and its
            # notification goes once the meter decodes with the new key.
            self._unreadable.add(issue_id.removeprefix(f"{ISSUE_DECRYPTION}_"))

    @callback
    def meter_heard(self, meter_id: str) -> None:
        """A telegram of the meter decoded: its key is right (a fixed key), so its decryption
        issue and notification go (a set look-up per telegram)."""
        if meter_id in self._unreadable:
            self._unreadable.discard(meter_id)
            async_clear_decryption_issue(self.hass, meter_id)

    @callback
    def raise_(self, kind: str, **placeholders: str) -> None:
        """A receiver issue (command_missing, device_missing, crash_loop)."""
        self._receiver_open.add(kind)
        async_raise_receiver_issue(
            self.hass, self.entry_id, kind, {"title": self.title, **placeholders}
        )

    @callback
    def clear(self, kind: str) -> None:
        """The receiver works again."""
        if kind in self._receiver_open:
            self._receiver_open.discard(kind)
            async_clear_receiver_issue(self.hass, self.entry_id, kind)

    @callback
    def new_run(self) -> None:
        """wmbusmeters starts again: a decryption failure it reports is reported again."""
        self._reported_this_run.clear()

    @callback
    def runner_failed(self, status: RunnerStatus, command: str, *, started: bool) -> None:
        """wmbusmeters ended unexpectedly, or could not start (`started` False): five times in
        a row is a crash loop."""
        if not started:
            self.raise_("command_missing", command=command, reason=status.reason or "")
        if status.failures >= CRASH_LOOP_COUNT:
            reason = status.reason or ""
            if len(reason) > MAX_ISSUE_TEXT:
                reason = reason[: MAX_ISSUE_TEXT - 1] + "…"
            self.raise_("crash_loop", restarts=str(status.failures), last_error=reason)

    @callback
    def decryption_failed(
        self, *, subentry_id: str, meter_id: str, name: str, problem: DecryptionProblem, key: bool
    ) -> None:
        """wmbusmeters cannot read a configured meter: once per run, a fixable issue (and a
        notification the first time)."""
        if meter_id in self._reported_this_run:
            return
        self._reported_this_run.add(meter_id)
        problem = effective_problem(problem, key)
        _LOGGER.warning(
            "wmbusmeters cannot read meter %s (%s): %s",
            name,
            meter_id,
            problem.value.replace("_", " "),
        )
        self._unreadable.add(meter_id)
        async_raise_decryption_issue(
            self.hass,
            entry_id=self.entry_id,
            subentry_id=subentry_id,
            meter_id=meter_id,
            name=name,
            problem=problem,
        )
