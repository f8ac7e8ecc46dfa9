"""The dashboard in real headless Chromium against a real server and the simulator (SQLite).

Debian's ``/usr/bin/chromium`` driven by the Playwright package — never a browser download.
Every page visited is saved under ``screenshots/`` (git-ignored) for a reviewer to look at.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_SECRET
from waconnect.dashboard import users
from waconnect.runtime import Runtime
from waconnect.settings import Settings
from waconnect.testing.processes import Process, start_server
from waconnect.testing.stack import DEMO_TEMPLATE, start_simulator
from waconnect.web.app import prepare_database
from waconnect.workspaces import service as workspaces

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"
ADMIN, OTHER, PASSWORD = "admin@example.com", "other@example.com", "browser test password"
SIM_GENERIC_PATH = "/api/v5/whatsapp//outbound/clevertap/"

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) "
        "to run the dashboard's browser tests",
        allow_module_level=True,
    )
pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")

from playwright.sync_api import BrowserContext, Page, expect, sync_playwright  # noqa: E402

# Six processes share two cores here: a condition gets a generous deadline (never a sleep).
expect.set_options(timeout=20_000)


@dataclass
class Live:
    server: Process
    simulator: Process
    key: str

    @property
    def url(self) -> str:
        return self.server.base_url

    def api(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + "/api/v1",
            headers={"Authorization": f"Bearer {key or self.key}"},
            timeout=30,
        )

    def move_clock(self, seconds: float) -> None:
        answer = httpx.post(self.url + "/_test/clock", json={"advance_seconds": seconds})
        assert answer.status_code == 200, answer.text


async def _prepare(env: dict[str, str]) -> str:
    """Migrate, make the users of two workspaces and an API key; returns the key."""
    runtime = Runtime.build(
        Settings(
            database_url=env["WACONNECT_DATABASE_URL"],
            data_dir=Path(env["WACONNECT_DATA_DIR"]),
            secret_key=TEST_SECRET,
        )
    )
    try:
        await prepare_database(runtime)
        async with runtime.sessions() as session:
            default = await workspaces.workspace_by_name(session, "default")
            other = await workspaces.create_workspace(session, runtime.clock, "other")
            await users.create_user(session, runtime.clock, default.id, ADMIN, PASSWORD)
            await users.create_user(session, runtime.clock, other.id, OTHER, PASSWORD)
            _row, key = await workspaces.create_key(session, runtime.clock, default.id, "tests")
            await session.commit()
        return key
    finally:
        await runtime.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("dashboard-browser")
    env = {
        "WACONNECT_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'waconnect.db'}",
        "WACONNECT_DATA_DIR": str(folder / "data"),
        "WACONNECT_SECRET_KEY": TEST_SECRET,
        "WACONNECT_TEST_CONTROLS": "1",
    }
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(max_workers=1) as pool:
        key = pool.submit(asyncio.run, _prepare(env)).result()
    simulator = start_simulator(folder)
    try:
        server = start_server(env, folder)
    except BaseException:
        simulator.stop()
        raise
    yield Live(server=server, simulator=simulator, key=key)
    server.stop()
    simulator.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data-dir
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(10_000)
        yield context
        context.close()


@pytest.fixture
def page(browser: BrowserContext, live: Live) -> Iterator[Page]:
    """A new tab with no session; fails the test on any script error or CSP violation."""
    browser.clear_cookies()
    tab = browser.new_page()
    problems: list[str] = []
    tab.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: problems.append(str(exc)))
    yield tab
    tab.close()
    # Refusal pages answer 4xx on purpose; Chromium logs those loads as console errors.
    real = [text for text in problems if "Failed to load resource" not in text]
    assert not real, real


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def phone_shot(page: Page, name: str) -> None:
    """The page at a phone's width: nothing sticks out sideways (no horizontal scrolling)."""
    page.set_viewport_size({"width": 390, "height": 844})
    # Charts and wrapped tables settle after the resize; wait for the layout, not for time.
    page.wait_for_function("() => document.documentElement.scrollWidth <= 390")
    shot(page, name)
    page.set_viewport_size({"width": 1280, "height": 900})


def log_in(page: Page, live: Live, email: str = ADMIN, password: str = PASSWORD) -> None:
    page.goto(live.url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_connect_a_provider_verify_it_and_follow_a_message(page: Page, live: Live) -> None:
    # Logging in with the keyboard alone: the email box has the focus, Tab, Enter.
    page.goto(live.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_label("Email")).to_be_focused()
    shot(page, "01-login")
    page.keyboard.type(ADMIN)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Messages by status")).to_be_visible()
    shot(page, "02-home")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="WhatsApp Connect").click()
    expect(page.get_by_role("heading", name="WhatsApp Connect")).to_be_visible()
    shot(page, "03-connect-empty")
    page.get_by_role("link", name="Add provider").first.click()

    # A wrong form first: every problem is shown at its field, the summary takes the focus.
    page.get_by_label("WhatsApp number").fill("12")
    page.get_by_label("Maximum concurrent requests").fill("5")
    page.get_by_role("button", name="Add provider").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Nickname: must not be empty")
    expect(page.locator("#f-max-concurrency-error")).to_contain_text("between 30 and 1000")
    shot(page, "04-add-provider-errors")

    page.get_by_label("Nickname").fill("Simulator line")
    page.get_by_label("Provider kind").select_option("generic")
    page.get_by_label("WhatsApp number").fill("+91 80000 00002")
    page.get_by_label("Endpoint URL").fill(live.simulator.base_url + SIM_GENERIC_PATH)
    page.get_by_label("Maximum concurrent requests").fill("50")
    page.get_by_role("button", name="Add header").click()
    page.locator('input[name="headers.name"]').last.fill("X-Team")
    page.locator('input[name="headers.value"]').last.fill("growth")
    page.get_by_role("button", name="Remove header 1").click()  # the empty first row goes
    expect(page.get_by_label("Auto-reply text")).to_be_hidden()
    page.get_by_label("Auto-reply to untracked senders").check()
    page.get_by_label("Auto-reply text").fill("Thanks! We reply within the hour.")
    page.get_by_role("button", name="Add provider").click()

    expect(page.get_by_role("heading", name="Callback URLs")).to_be_visible()
    expect(page.locator(".notice")).to_contain_text("The provider was added")
    provider_id = int(page.url.split("/connect/")[1].split("?")[0])
    inbound = page.get_by_label("Inbound messages URL", exact=True)
    delivery = page.get_by_label("Delivery reports URL", exact=True)
    expect(inbound).to_have_value(re.compile(rf"/callbacks/{provider_id}/[\w-]+/inbound$"))
    expect(delivery).to_have_value(re.compile(rf"/callbacks/{provider_id}/[\w-]+/delivery$"))
    expect(page.locator(".facts")).to_contain_text("X-Team: growth")
    page.get_by_role("button", name="Copy Inbound messages URL").click()
    expect(page.get_by_role("button", name="Copy Inbound messages URL")).to_have_text("Copied")
    shot(page, "05-provider")
    page.get_by_role("link", name="Edit provider").click()
    expect(page.get_by_label("Nickname")).to_have_value("Simulator line")
    expect(page.get_by_label("Auto-reply text")).to_have_value("Thanks! We reply within the hour.")
    shot(page, "05a-edit-provider")
    page.get_by_role("link", name="WhatsApp Connect").first.click()
    expect(page.locator("tr", has_text="Simulator line")).to_contain_text("918000000002")
    shot(page, "05b-connect-list")
    page.get_by_role("link", name="Simulator line").click()

    page.get_by_role("button", name="Verify").click()
    result = page.locator("#verify-result")
    expect(result).to_contain_text("Verified: the provider accepted the validation request")
    expect(result.locator("#verify-request")).to_contain_text('"payloadVersion"')
    expect(result.locator("#verify-response")).not_to_be_empty()
    shot(page, "06-provider-verified")
    phone_shot(page, "06b-provider-phone")

    message_id = _send_one(live, provider_id, page.get_by_label("Inbound messages URL", exact=True))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Messages").click()
    row = page.locator("tr", has_text="919812345678")
    expect(row).to_contain_text("Simulator line")
    shot(page, "07-messages")
    phone_shot(page, "07b-messages-phone")
    page.get_by_label("Phone").fill("+91 98123 45678")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"to=%2B91\+98123\+45678"))
    page.get_by_role("link", name=f"#{message_id}").click()

    # The page follows the message by itself until the provider has it.
    expect(page.locator("#message-status")).to_contain_text(re.compile("sent|delivered|read"))
    attempt = page.locator("details.attempt").first
    expect(attempt).to_contain_text("accepted")
    expect(attempt.locator("pre").first).to_contain_text(f'"msgId": "{message_id}-1"')
    expect(page.locator(".timeline")).to_contain_text("Attempt 1")
    shot(page, "08-message")

    page.goto(f"{live.url}/connect/{provider_id}")
    old_url = page.get_by_label("Inbound messages URL", exact=True).input_value()
    page.get_by_role("button", name="Rotate token").click()
    expect(page.locator(".notice").first).to_contain_text("The callback token was rotated")
    assert page.get_by_label("Inbound messages URL", exact=True).input_value() != old_url
    expect(page.get_by_text("keep working until")).to_be_visible()
    shot(page, "09-provider-rotated")


def _send_one(live: Live, provider_id: int, _inbound: Any) -> int:
    """A message through the API (with the provider's template), the simulator told where to
    post its reports."""
    with live.api() as api:
        made = api.post(f"/providers/{provider_id}/templates", json=DEMO_TEMPLATE)
        assert made.status_code == 201, made.text
        provider = api.get(f"/providers/{provider_id}").json()
        httpx.post(
            live.simulator.base_url + "/_sim/config",
            json={
                "numbers": {
                    provider["mobile_number"]: {
                        "delivery_url": provider["callbacks"]["delivery_url"],
                        "inbound_url": provider["callbacks"]["inbound_url"],
                    }
                }
            },
        ).raise_for_status()
        sent = api.post(
            "/messages",
            json={
                "provider_id": provider_id,
                "to": "+91 98123 45678",
                "template": {
                    "name": "order_update",
                    "language": "en",
                    "components": [
                        {
                            "type": "body",
                            "parameters": [
                                {"type": "text", "text": "Asha"},
                                {"type": "text", "text": "A-1001"},
                            ],
                        }
                    ],
                },
            },
        )
        assert sent.status_code == 202, sent.text
        return int(sent.json()["id"])


def test_api_keys_and_workspace_defaults(page: Page, live: Live) -> None:
    log_in(page, live)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_label("Label for a new key").fill("order system")
    page.get_by_role("button", name="Create API key").click()
    key = page.get_by_label("API key", exact=True).input_value()
    assert key.startswith("wac_")
    expect(page.get_by_text("it will not be shown again")).to_be_visible()
    shot(page, "10-settings-new-key")
    with live.api(key) as api:
        assert api.get("/workspace").status_code == 200

    page.get_by_role("button", name="Revoke the key order system").click()
    expect(page.locator(".notice")).to_contain_text("The API key was revoked")
    expect(page.locator("tr", has_text="order system")).to_contain_text("revoked")
    assert key not in page.content()
    with live.api(key) as api:
        assert api.get("/workspace").status_code == 401
    shot(page, "11-settings-revoked")

    page.get_by_label("Time zone").fill("Mars/Olympus")
    page.get_by_label("Hold campaign messages during quiet hours").check()
    page.get_by_label("Quiet from").fill("22:00")
    page.get_by_role("button", name="Save workspace defaults").click()
    expect(page.locator("#f-timezone-error")).to_contain_text("not an IANA time zone")
    shot(page, "12-settings-errors")
    page.get_by_label("Time zone").fill("Asia/Kolkata")
    page.get_by_role("button", name="Save workspace defaults").click()
    expect(page.locator(".notice")).to_contain_text("The workspace settings were saved.")
    with live.api() as api:
        assert api.get("/workspace").json()["settings"]["dnd"] == {"start": "22:00", "end": "09:00"}


def test_refusals_are_clear_pages(page: Page, live: Live) -> None:
    # A wrong password.
    log_in_page = live.url + "/login"
    page.goto(log_in_page)
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    shot(page, "13-login-wrong-password")

    # A form without its CSRF token (as another site would send it).
    log_in(page, live)
    page.goto(live.url + "/settings")
    page.evaluate(
        "document.querySelectorAll('form[action=\"/settings/keys\"] input[name=csrf_token]')"
        ".forEach(input => input.remove())"
    )
    page.get_by_label("Label for a new key").fill("forged")
    page.get_by_role("button", name="Create API key").click()
    expect(page.get_by_role("heading", name="Form refused")).to_be_visible()
    expect(page.locator("main")).to_contain_text("did not carry the security token")
    shot(page, "14-csrf-refused")
    with live.api() as api:
        assert all(row["label"] != "forged" for row in api.get("/keys").json())

    # Another workspace's provider, by its URL.
    with live.api() as api:
        made = api.post(
            "/providers",
            json={
                "nickname": "Owner only",
                "kind": "generic",
                "mobile_number": "918000000077",
                "endpoint_url": "https://provider.example.com/send",
            },
        )
        assert made.status_code == 201, made.text
        theirs = made.json()["id"]
    page.context.clear_cookies()
    log_in(page, live, OTHER)
    page.goto(f"{live.url}/connect/{theirs}")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("main")).to_contain_text(f"Provider {theirs} not found")
    expect(page.locator("main")).to_contain_text("belongs to another workspace")
    expect(page.locator("main")).not_to_contain_text("Owner only")
    shot(page, "15-other-workspace")

    # An expired session: the server's clock moves past the session's lifetime.
    page.goto(live.url + "/settings")
    live.move_clock(12 * 3600 + 60)
    try:
        page.reload()
        expect(page).to_have_url(re.compile(r"/login\?next=%2Fsettings&reason=expired$"))
        expect(page.get_by_role("status")).to_have_text(
            "Your session has expired. Log in again to continue."
        )
        shot(page, "16-session-expired")
        page.get_by_label("Email").fill(OTHER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(re.compile(r"/settings$"))  # back where it was
    finally:
        live.move_clock(-(12 * 3600 + 60))


def _simulated_provider(live: Live, nickname: str, number: str) -> dict[str, Any]:
    """A generic provider config at the simulator, which posts its reports back to us."""
    with live.api() as api:
        made = api.post(
            "/providers",
            json={
                "nickname": nickname,
                "kind": "generic",
                "mobile_number": number,
                "endpoint_url": live.simulator.base_url + SIM_GENERIC_PATH,
            },
        )
        assert made.status_code == 201, made.text
        provider: dict[str, Any] = made.json()
    httpx.post(
        live.simulator.base_url + "/_sim/config",
        json={
            "numbers": {
                provider["mobile_number"]: {
                    "delivery_url": provider["callbacks"]["delivery_url"],
                    "inbound_url": provider["callbacks"]["inbound_url"],
                }
            }
        },
    ).raise_for_status()
    return provider


def test_create_a_template_see_its_preview_and_send_a_test(page: Page, live: Live) -> None:
    provider = _simulated_provider(live, "Offers line", "918000000031")
    log_in(page, live)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
    expect(page.get_by_role("heading", name="Templates", exact=True)).to_be_visible()
    page.get_by_role("link", name="New template").click()
    page.get_by_label("Provider", exact=True).select_option(str(provider["id"]))
    page.get_by_label("Name (required)").fill("festive_offer")
    page.get_by_label("Category").select_option("MARKETING")
    page.get_by_label("Header type").select_option("IMAGE")
    page.get_by_label("Header sample").fill("https://cdn.example.com/festive.jpg")
    preview = page.locator("#preview")
    expect(preview.locator(".wa-media")).to_contain_text("Image")

    # A rule broken while typing shows in the preview pane at once.
    body = page.get_by_label("Body text")
    body.fill("{{1}}, your code {{2}} is ready.")
    expect(preview.locator(".rule-errors")).to_contain_text("starts with a variable")
    body.fill("Hi {{1}}, your code {{2}} gives 20% off.")
    page.get_by_label("Sample values").fill("Asha\nFEST20")
    page.get_by_label("Footer text").fill("Reply STOP to opt out")
    page.get_by_label("Button 1 type").select_option("URL")
    page.get_by_label("Button 1 label").fill("Shop now")
    page.get_by_label("Button 1 URL, phone or code").fill("https://shop.example.com/o/{{1}}")
    page.get_by_label("Button 1 URL sample").fill("fest")
    expect(preview.locator(".wa-body")).to_have_text("Hi Asha, your code FEST20 gives 20% off.")
    expect(preview.locator(".wa-buttons")).to_contain_text("Shop now")
    expect(preview.locator(".wa-footer")).to_have_text("Reply STOP to opt out")
    expect(preview).to_contain_text("Meets WhatsApp's template rules.")
    shot(page, "20-template-editor")
    phone_shot(page, "20b-template-editor-phone")
    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".notice")).to_contain_text("The template was saved.")
    expect(page.locator(".wa-body")).to_have_text("Hi Asha, your code FEST20 gives 20% off.")
    shot(page, "21-template")

    # Send a test: the dialog shows the exact request and the provider's answer, then the
    # message's later statuses as the simulator reports them.
    page.get_by_role("button", name="Send test").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Phone numbers")).to_be_focused()
    page.keyboard.type("+91 98123 45600")
    dialog.get_by_label("Value of body.1").fill("Ravi")
    dialog.get_by_role("button", name="Send test").click()
    result = page.locator("#test-result")
    expect(result.locator(".test-outcome")).to_contain_text("accepted")
    expect(result.locator("#test-1-request")).to_contain_text("Hi Ravi, your code FEST20")
    expect(result.locator("#test-1-response")).not_to_contain_text("(no answer yet)")
    expect(result.locator(".live-status")).to_contain_text("delivered")
    result.get_by_role("button", name="Copy the response to 919812345600").click()
    shot(page, "22-template-test-sent")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.goto(live.url + f"/templates?provider_id={provider['id']}")
    expect(page.locator("tr", has_text="festive_offer")).to_contain_text("approved")
    shot(page, "23-templates-list")

    # From the provider's page, a template picked opens its test dialog.
    page.get_by_role("link", name="Offers line").first.click()
    page.get_by_role("link", name="Send test of festive_offer (en)").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.get_by_role("dialog").get_by_label("Phone numbers")).to_be_editable()


def test_profiles_import_segments_and_inbound(page: Page, live: Live) -> None:
    provider = _simulated_provider(live, "Audience line", "918000000032")
    log_in(page, live)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Profiles").click()
    page.get_by_role("link", name="Import CSV").click()
    csv = "mobile,cust,city\n+91 98123 47001,a-1,Pune\n+91 98123 47002,a-2,Delhi\n"
    csv += "12,a-3,Pune\n+91 98123 47004,a-4,Pune\n"
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "people.csv", "mimeType": "text/csv", "buffer": csv.encode()}]
    )
    page.get_by_label("Column mapping").fill("mobile=phone\ncust=identity")
    shot(page, "30-profiles-import")
    page.get_by_role("button", name="Start import").click()
    expect(page.locator("#job-state")).to_contain_text("Import finished.")
    expect(page.locator("#job-created")).to_have_text("3")
    expect(page.locator("#job-errors")).to_contain_text("1")
    shot(page, "31-profiles-import-done")

    page.get_by_role("link", name="See the profiles").click()
    page.get_by_label("Attribute").select_option("city")
    page.get_by_label("Value", exact=True).fill("Pune")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    shot(page, "32-profiles-search")
    page.locator("tr", has_text="a-1").get_by_role("link").click()
    expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("919812347001")
    shot(page, "33-profile")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Segments").click()
    page.get_by_role("link", name="New segment").click()
    page.get_by_label("Segment name").fill("Pune")
    page.get_by_label("Condition 1 attribute or event").fill("city")
    page.get_by_label("Condition 1 value").fill("Pune")
    expect(page.locator("#count-value")).to_have_text("2")
    page.get_by_role("button", name="Add condition").click()
    page.get_by_label("New condition attribute or event").fill("shoe_size")
    expect(page.locator("#segment-count")).to_contain_text("unknown attribute")
    shot(page, "34-segment-builder-error")
    page.get_by_role("button", name="Remove the new condition").click()
    expect(page.locator("#count-value")).to_have_text("2")
    shot(page, "35-segment-builder")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("heading", name="Pune")).to_be_visible()
    expect(page.locator("main")).to_contain_text("a-4")
    shot(page, "36-segment")

    # A reply arrives at the provider's inbound callback; the Inbound page shows its sender.
    inbound = {
        "payloadVersion": "0.1",
        "from": "919812347001",
        "wabaNumber": provider["mobile_number"],
        "timestamp": "1731000100",
        "type": "text",
        "text": {"body": "Is the sale on today?"},
    }
    httpx.post(provider["callbacks"]["inbound_url"], json=inbound).raise_for_status()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Messages").click()
    page.get_by_role("link", name="Inbound replies").click()
    row = page.locator("tr", has_text="Is the sale on today?")
    expect(row).to_contain_text("919812347001")
    expect(row).to_contain_text("Audience line")
    shot(page, "37-inbound")


def test_create_and_run_a_small_campaign(page: Page, live: Live) -> None:
    provider = _simulated_provider(live, "Campaign line", "918000000033")
    with live.api() as api:
        template = api.post(f"/providers/{provider['id']}/templates", json=DEMO_TEMPLATE)
        assert template.status_code == 201, template.text
        rows = [
            {
                "identity": f"camp-{n}",
                "phone": f"+91 98123 480{n:02d}",
                "attributes": {"tier": "gold"},
            }
            for n in range(4)
        ]
        made = api.post("/profiles/batch", json={"profiles": rows})
        assert made.status_code == 200, made.text
        segment = api.post(
            "/segments",
            json={"name": "Gold", "definition": {"attribute": "tier", "op": "eq", "value": "gold"}},
        )
        assert segment.status_code == 201, segment.text
    log_in(page, live)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Campaign name").fill("Gold offer")
    page.get_by_label("Segment", exact=True).select_option(label="Gold")
    page.get_by_label("Provider", exact=True).select_option(str(provider["id"]))
    page.get_by_label("Template", exact=True).select_option(str(template.json()["id"]))
    page.get_by_label("Variables").fill("body.1 = attribute:first_name | there\nbody.2 = G-7")
    page.get_by_label("Quiet hours").select_option("ignore")
    shot(page, "40-campaign-wizard")
    page.get_by_role("button", name="Save draft and preview").click()
    expect(page.locator(".notice")).to_contain_text("saved as a draft")
    expect(page.locator("#preview-would-send")).to_have_text("4")
    expect(page.locator("#campaign-preview")).to_contain_text("Hi there, order G-7 is on its way.")
    shot(page, "41-campaign-preview")

    page.get_by_role("button", name="Start campaign").click()
    expect(page.locator(".notice")).to_contain_text("The campaign was started.")
    # The page follows the campaign by itself until every message has its final status.
    expect(page.locator("#funnel-delivered .count")).to_have_text("4")
    expect(page.locator("#funnel-sent .count")).to_have_text("4")
    expect(page.locator("#funnel-targeted .count")).to_have_text("4")
    expect(page.locator("#funnel-failed .count")).to_have_text("0")
    expect(page.locator("#campaign-live")).not_to_have_attribute("hx-get", re.compile("."))
    expect(page.locator("#campaign-status")).to_have_text("completed")
    page.reload()
    expect(page.locator("#status-chart")).to_have_attribute("width", re.compile(r"\d+"))
    shot(page, "42-campaign-live")
    phone_shot(page, "42b-campaign-phone")


def test_a_journey_drawn_simulated_and_published(page: Page, live: Live) -> None:
    provider = _simulated_provider(live, "Journey line", "918000000034")
    with live.api() as api:
        # The settings test left quiet hours on, and this server's business clock is the wall
        # clock: without this the simulated send would wait for them at night.
        assert api.patch("/workspace", json={"dnd": None}).status_code == 200
        made = api.post(f"/providers/{provider['id']}/templates", json=DEMO_TEMPLATE)
        assert made.status_code in (201, 409), made.text
        api.post(
            "/profiles/batch",
            json={"profiles": [{"identity": "walker", "phone": "+91 98123 49900"}]},
        ).raise_for_status()
    log_in(page, live)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Journeys").click()
    page.get_by_role("link", name="New journey").click()
    definition = page.get_by_label("Journey definition (YAML or JSON)")
    text = definition.input_value()
    definition.fill(text.replace("next: done", "next: nowhere"))
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator("#node-hello")).to_have_class(re.compile("invalid"))
    expect(page.locator("#node-hello .field-error")).to_contain_text("nowhere")
    shot(page, "50-journey-editor-errors")
    definition.fill(text)
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".notice")).to_contain_text("saved as a draft")
    page.get_by_label("Profile", exact=True).fill("walker")
    page.get_by_role("button", name="Simulate").click()
    expect(page.locator("#simulation-outcome")).to_contain_text("done")
    shot(page, "51-journey-simulated")
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("#journey-status")).to_have_text("live")
    expect(page.locator("#node-hello")).to_contain_text("entered 0")
    shot(page, "52-journey")
    page.get_by_role("link", name="Journeys").first.click()
    expect(page.locator("tr", has_text="Welcome")).to_contain_text("live")
    shot(page, "53-journeys")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    shot(page, "54-home")
    # Every list page reads at a phone's width too.
    for path in ("/templates", "/profiles", "/segments", "/campaigns", "/journeys", "/settings"):
        page.goto(live.url + path)
        phone_shot(page, f"55-phone{path.replace('/', '-')}")


def test_import_templates_from_the_provider(page: Page, live: Live) -> None:
    with live.api() as api:
        made = api.post(
            "/providers",
            json={
                "nickname": "MSG91 line",
                "kind": "msg91",
                "mobile_number": "918000000035",
                "endpoint_url": live.simulator.base_url + "/api/v5/whatsapp",
                "headers": {"Authkey": "any-key-123"},
            },
        )
        assert made.status_code == 201, made.text
    listed = {"status": "APPROVED", "category": "MARKETING", "language": "en"}
    catalogue = [
        {
            **listed,
            "name": "spring_sale",
            "id": "201",
            "components": [{"type": "BODY", "text": "Spring sale: 30% off."}],
        },
        {
            **listed,
            "name": "too_long",
            "id": "202",
            "components": [{"type": "BODY", "text": "x" * 1025}],
        },
    ]
    httpx.post(
        live.simulator.base_url + "/_sim/config", json={"options": {"catalogue": catalogue}}
    ).raise_for_status()
    log_in(page, live)
    page.goto(live.url + "/templates")
    page.get_by_role("button", name="Import templates from MSG91 line").click()
    expect(page.locator(".notice")).to_contain_text("1 created")
    expect(page.locator("tr", has_text="too_long")).to_contain_text(
        "1025 characters, the limit is 1024"
    )
    shot(page, "24-templates-imported")
    page.get_by_role("link", name="spring_sale").click()
    expect(page.locator(".wa-body")).to_have_text("Spring sale: 30% off.")
