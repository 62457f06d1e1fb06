"""Provision scripts/develop's demo, the way a user would: onboarding, then the integration's
own config flow and meter subentry flows, through Home Assistant's HTTP API.

Standard library only (it runs with the host's python3). Demo credentials, demo only.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

USER, PASSWORD = "demo", "demo-1234"
WRONG_KEY = "28F64A24988064A079AA2C807D6102AF"  # the right one ends in AE: try the repair
METERS = [
    ("Koldt vand", "multical21", "44556677", ""),
    ("Fjernvarme", "kamheat", "80363608", ""),
    ("Elmåler", "amiplus", "10101010", ""),
    ("Gasmåler", "apator08", "004444dd", ""),
    ("Radiator stue", "qcaloric", "78563412", ""),
    ("Stuen", "cma12w", "66666666", ""),
    ("Vandmåler krypteret", "apator162", "88888888", "00000000000000000000000000000000"),
    ("Vand køkken", "multical21", "76348799", WRONG_KEY),
]


class Api:
    def __init__(self, base: str) -> None:
        self.base = base
        self.token: str | None = None

    def call(self, path: str, data: Any = None, form: bool = False) -> Any:
        headers = {}
        body = None
        if form:
            body = urllib.parse.urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif data is not None:
            body = json.dumps(data).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.base + path, body, headers, method="POST" if body else "GET"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")


def main(base: str, command: str, device: str, link_modes: str = "", device_type: str = "") -> None:
    api = Api(base)
    client_id = base + "/"
    for _ in range(300):
        try:
            steps = api.call("/api/onboarding")
            break
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            time.sleep(1)
    else:
        sys.exit("Home Assistant did not answer")
    if any(step["step"] == "user" and step["done"] for step in steps):
        return  # provisioned already
    code = api.call(
        "/api/onboarding/users",
        {
            "client_id": client_id,
            "name": "Demo",
            "username": USER,
            "password": PASSWORD,
            "language": "en",
        },
    )["auth_code"]
    api.token = api.call(
        "/auth/token",
        {"grant_type": "authorization_code", "code": code, "client_id": client_id},
        form=True,
    )["access_token"]
    api.call("/api/onboarding/core_config", {})
    api.call("/api/onboarding/analytics", {})
    api.call("/api/onboarding/integration", {"client_id": client_id, "redirect_uri": client_id})

    if device.startswith("mqtt:"):
        result = mqtt_receiver(api, command, int(device.removeprefix("mqtt:")))
    else:
        flow = api.call("/api/config/config_entries/flow", {"handler": "wmbusmeters"})
        # The first step is a menu: a radio here, a network port, MQTT or a wired M-Bus.
        api.call(f"/api/config/config_entries/flow/{flow['flow_id']}", {"next_step_id": "radio"})
        result = api.call(
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {
                "command": command,
                "device": device,
                "link_modes": [m for m in link_modes.split(",") if m],
                **({"device_type": device_type} if device_type else {}),
            },
        )
    if result.get("type") != "create_entry":
        sys.exit(f"the receiver flow did not create an entry: {result}")
    entry_id = result["result"]["entry_id"]
    for name, driver, meter_id, key in METERS:
        flow = api.call(
            "/api/config/config_entries/subentries/flow", {"handler": [entry_id, "meter"]}
        )
        result = api.call(
            f"/api/config/config_entries/subentries/flow/{flow['flow_id']}",
            {"name": name, "driver": driver, "meter_id": meter_id, "key": key},
        )
        if result.get("type") != "create_entry":
            sys.exit(f"the meter flow for {name} did not create it: {result}")
    where = "MQTT gateways" if device.startswith("mqtt:") else "a simulated radio"
    print(f"demo ready: {len(METERS)} meters on {where}", flush=True)


def _form_default(field: dict[str, Any]) -> tuple[str, Any] | None:
    if "default" in field:
        return field["name"], field["default"]
    if not field.get("required"):
        return None
    selector = field.get("selector", {})
    if "boolean" in selector:
        return field["name"], False
    if options := selector.get("select", {}).get("options"):
        first = options[0]
        return field["name"], first["value"] if isinstance(first, dict) else first
    return None


def mqtt_receiver(api: Api, command: str, port: int) -> Any:
    """Home Assistant's MQTT integration on the local broker, then an MQTT receiver of the
    demo gateways' JSON frames (demo/gateway.py), both through their own config flows."""
    flow = api.call("/api/config/config_entries/flow", {"handler": "mqtt"})
    if flow.get("step_id") != "broker":
        sys.exit(f"the MQTT flow did not ask for its broker: {flow}")
    # The form as this Home Assistant version draws it, as the frontend fills it in: its
    # defaults, a required switch off, a required choice its first option (2026.11 added a
    # required section of further settings).
    answer: dict[str, Any] = {"broker": "127.0.0.1", "port": port}
    for field in flow.get("data_schema", []):
        if field["name"] not in answer:
            if field.get("type") == "expandable":
                answer[field["name"]] = dict(filter(None, map(_form_default, field["schema"])))
            elif default := _form_default(field):
                answer[default[0]] = default[1]
    result = api.call(f"/api/config/config_entries/flow/{flow['flow_id']}", answer)
    if result.get("type") != "create_entry":
        sys.exit(f"the MQTT flow did not create an entry: {result}")
    flow = api.call("/api/config/config_entries/flow", {"handler": "wmbusmeters"})
    api.call(f"/api/config/config_entries/flow/{flow['flow_id']}", {"next_step_id": "mqtt_raw"})
    return api.call(
        f"/api/config/config_entries/flow/{flow['flow_id']}",
        {
            "command": command,
            "mqtt_topic": "wmbus/+/raw",
            "payload_format": "json",
            "frame_field": "data",
        },
    )


def login(api: Api) -> None:
    """Log in as the demo user (the login form's flow)."""
    client_id = api.base + "/"
    flow = api.call(
        "/auth/login_flow",
        {"client_id": client_id, "handler": ["homeassistant", None], "redirect_uri": client_id},
    )
    result = api.call(
        f"/auth/login_flow/{flow['flow_id']}",
        {"client_id": client_id, "username": USER, "password": PASSWORD},
    )
    api.token = api.call(
        "/auth/token",
        {"grant_type": "authorization_code", "code": result["result"], "client_id": client_id},
        form=True,
    )["access_token"]


def check(base: str, timeout: float = 60) -> None:
    """Wait until the demo meters show values; say how long it took (scripts/smoke-develop)."""
    api = Api(base)
    start = time.monotonic()
    while True:
        try:
            login(api)
            break
        except (urllib.error.URLError, KeyError, ConnectionError):
            if time.monotonic() - start > timeout:
                sys.exit("could not log in as the demo user")
            time.sleep(1)
    wanted = {meter_id for _, _, meter_id, key in METERS if key != WRONG_KEY}
    # The meters (their devices' serial numbers) with a sensor showing a reading.
    template = (
        "{{ states.sensor | rejectattr('state', 'in', ['unknown', 'unavailable'])"
        " | map(attribute='entity_id') | map('device_attr', 'serial_number')"
        " | reject('none') | unique | list | to_json }}"
    )
    showing: set[str] = set()
    while time.monotonic() - start < timeout:
        showing = set(api.call("/api/template", {"template": template})) & wanted
        if showing == wanted:
            print(f"demo meters showing values after {time.monotonic() - start:.0f} s", flush=True)
            return
        time.sleep(1)
    sys.exit(f"only {len(showing)} of {len(wanted)} demo meters show values after {timeout:.0f} s")


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        main(*sys.argv[1:6])
