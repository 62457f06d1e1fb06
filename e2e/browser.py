"""End to end in Home Assistant's real frontend (Debian's chromium, driven by Playwright).

Run by scripts/smoke-develop against the demo of scripts/develop: log in, open the
integration, add a meter through the subentry flow, open a meter's device page and see its
values, see the add-receiver flow and the wrong-key repair in German in a German browser, fix
the wrong key through Settings → Repairs by uploading the utility's key file (not typing it),
and see that meter's values appear.

    python e2e/browser.py URL [NAME]

Screenshots of each step go to artifacts/e2e/ (not committed), in artifacts/e2e/NAME/ when a
name is given (scripts/smoke-develop: the environment, so each Home Assistant version keeps its
own). Exits non-zero on failure.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import re
import sys
import time

from playwright.async_api import (
    Browser,
    Page,
    TimeoutError as PlaywrightTimeout,
    async_playwright,
)

REPO = Path(__file__).resolve().parent.parent
# (run as a script from the checkout: the demo's key-file builder is beside it)
sys.path.insert(0, str(REPO))
from demo import key_file  # noqa: E402

ARTIFACTS = REPO / "artifacts" / "e2e"
#: The utility's key file the wrong-key repair is fixed with: it holds the right key of the
#: demo's encrypted meter (demo/simulation_demo.txt) and another meter's.
KEY_FILE_METERS = {
    "76348799": "28F64A24988064A079AA2C807D6102AE",
    "80363608": "00112233445566778899AABBCCDDEEFF",
}
KEY_FILE_PASSWORD = "Forsyning2026"  # noqa: S105  (the demo file's)
KEY_FILE_SECTION = "Use a key file from your utility"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def shot(page: Page, out: Path, name: str) -> None:
    path = out / f"{name}.png"
    await page.screenshot(path=str(path))
    print(f"  screenshot {path.relative_to(ARTIFACTS.parents[1])}", flush=True)


async def last_shot(page: Page, out: Path, name: str) -> None:
    """What the page showed when a step gave up (never hiding that step's error)."""
    try:
        await shot(page, out, name)
    except Exception as err:  # (the step's error is the one to report)
        print(f"  no screenshot: {err}", flush=True)


async def open_device(page: Page, base: str, name: str) -> None:
    """From the integration page, the device row of a meter (its second mention).

    The page is loaded again if the row does not come: once in a CI run (2026.10, right
    after a repair's dialog closed) the row did not come within 30 s; the cause was not
    found, and the same step passed in every other run.
    """
    row = page.get_by_text(name, exact=True).nth(1)
    for attempt in range(3):
        await page.goto(f"{base}/config/integrations/integration/wmbusmeters")
        try:
            await row.wait_for(timeout=15_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            print(f"  the device row of {name} did not come; loading the page again", flush=True)
    await row.click()
    await page.wait_for_url("**/config/devices/device/**")


async def log_in(page: Page, base: str) -> None:
    """Log in as the demo user (by the form's field names: the page may be in any language)."""
    await page.goto(base)
    await page.locator("input[name='username']").fill("demo")
    await page.locator("input[name='password']").fill("demo-1234")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/home/**")


async def in_german(browser: Browser, base: str, out: Path) -> None:
    """Step 5: a user whose browser speaks German sees the add-receiver flow and the wrong-key
    repair in German (issue 29); the texts looked for are the integration's own de.json."""
    print("5. a German browser: the add-receiver flow and the repair in German", flush=True)
    german = json.loads((REPO / "custom_components/wmbusmeters/translations/de.json").read_text())
    context = await browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(30_000)
    try:
        await log_in(page, base)
        await page.goto(f"{base}/config/integrations/dashboard/add?domain=wmbusmeters")
        # (the frontend asks first whether to set the integration up: "OK" in German too)
        await page.get_by_role("button", name="OK", exact=True).click()
        menu = german["config"]["step"]["user"]
        await page.get_by_text(menu["title"]).wait_for()
        await page.get_by_text(menu["menu_options"]["mqtt_raw"]).wait_for()
        await shot(page, out, "5-de-config-flow")
        await page.keyboard.press("Escape")
        # Closing the flow opened by the add?domain= route makes the frontend navigate back to
        # the dashboard: a goto before that navigation happens is aborted by it (seen once).
        await page.get_by_text(menu["title"]).wait_for(state="hidden")
        await page.wait_for_function("() => !window.location.search.includes('domain=')")
        await page.goto(f"{base}/config/repairs")
        issue = german["issues"]["decryption_failed"]
        await page.get_by_text(issue["title"].format(name="Vand køkken")).click()
        step = issue["fix_flow"]["step"]["wrong_key"]
        await page.get_by_text(step["title"].format(name="Vand køkken")).wait_for()
        await page.get_by_role("heading", name=step["data"]["key_file_section"]).wait_for()
        await page.get_by_text(step["description"][:40]).wait_for()  # (markdown, by a worker)
        await shot(page, out, "5-de-repair")
        await page.keyboard.press("Escape")  # (leaves no fix flow open for the next step)
    except Exception:
        await last_shot(page, out, "failed-de")
        raise
    finally:
        await context.close()


async def fix_key_with_file(page: Page, base: str, out: Path) -> None:
    """Step 6: the wrong-key repair fixed by uploading the utility's key file (not typing the
    key) through the form's file selector."""
    print("6. fix the wrong key in Settings → Repairs", flush=True)
    await page.goto(f"{base}/config/repairs")
    await page.get_by_text("Meter Vand køkken cannot be read").click()
    await page.get_by_text("Wrong key for Vand køkken").wait_for()
    # (the description is markdown, rendered by a worker after the dialog opens)
    await page.get_by_text("cannot decrypt the telegrams of meter Vand køkken").wait_for()
    await shot(page, out, "6-repair")
    await page.get_by_role("heading", name=KEY_FILE_SECTION).click()
    await page.locator("input[name='key_file_password']").wait_for()
    await page.locator("input[type='file']").set_input_files(
        files=[
            {
                "name": "forsyning.kem",
                "mimeType": "application/octet-stream",
                "buffer": (
                    key_file.kem(key_file.meters_in_order(KEY_FILE_METERS), KEY_FILE_PASSWORD)
                ),
            }
        ]
    )
    await page.get_by_text("forsyning.kem").first.wait_for()
    await page.locator("input[name='key_file_password']").fill(KEY_FILE_PASSWORD)
    await shot(page, out, "6-repair-key-file")
    await page.get_by_role("button", name="Submit").click()
    await page.get_by_text("Success").first.wait_for()
    await shot(page, out, "6-repair-fixed")


async def steps(browser: Browser, page: Page, base: str, out: Path) -> None:
    """The user's journey, step by step."""
    print("1. log in as the demo user", flush=True)
    await log_in(page, base)
    await shot(page, out, "1-logged-in")

    print("2. Settings → Devices & services → wmbusmeters", flush=True)
    await page.goto(f"{base}/config/integrations/integration/wmbusmeters")
    await page.get_by_text("Koldt vand").first.wait_for()
    await shot(page, out, "2-integration")

    print("3. add a meter through the subentry flow", flush=True)
    await page.get_by_role("button", name="Add meter").first.click()
    # The form's collapsed key-file section opens (issue 31: a key file instead of typing)
    await page.get_by_role("heading", name=KEY_FILE_SECTION).click()
    await page.get_by_text("Instead of typing the key").first.wait_for()
    # (waits until the opening panel stands still: the screenshot shows it open)
    await page.locator("input[name='key_file_password']").scroll_into_view_if_needed()
    await shot(page, out, "3-key-file-section")
    await page.locator("input[name='name']").fill("Garage")
    await page.locator("input[name='meter_id']").fill("12345678")
    await page.get_by_role("button", name="Submit").click()
    await page.get_by_text("Created configuration for Garage").wait_for()
    await shot(page, out, "3-meter-added")
    await page.get_by_role("button", name="Finish").click()

    print("4. a meter's device page shows its values and its alarms", flush=True)
    await open_device(page, base, "Koldt vand")
    await page.get_by_text("20.02 m³").first.wait_for()
    # Its alarm sensors (there before any alarm), and its empty texts (time_leaking...)
    # as the frontend translates state `none`, not as blank rows.
    await page.get_by_text("Dry pipe", exact=True).first.wait_for()
    await page.get_by_text("Leak", exact=True).first.wait_for()
    # (a regular expression is case-sensitive: an untranslated `none` does not match)
    await page.get_by_text(re.compile(r"\bNone\b")).filter(visible=True).first.wait_for()
    await shot(page, out, "4-device")

    await in_german(browser, base, out)
    await fix_key_with_file(page, base, out)

    print("7. the meter's values appear", flush=True)
    await open_device(page, base, "Vand køkken")
    await page.get_by_text("6.41 m³").first.wait_for(timeout=60_000)
    await shot(page, out, "7-fixed-meter")


async def run(base: str, out: Path) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)

        try:
            await steps(browser, page, base, out)
        except Exception:
            await last_shot(page, out, "failed")
            raise
        finally:
            await browser.close()


def main() -> None:
    out = ARTIFACTS / sys.argv[2] if len(sys.argv) > 2 else ARTIFACTS
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    try:
        asyncio.run(run(sys.argv[1], out))
    except Exception as err:  # any failure is the test's result
        print(f"browser test FAILED: {err}", flush=True)
        sys.exit(1)
    print(f"browser test passed in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
