"""The dashboard in-process on both databases: login, sessions, CSRF, workspace isolation, forms
with inline errors, and HTML error pages that leave the API's JSON errors as they were."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import new_key
from tests.dashboard.helpers import (
    add_user,
    assert_page,
    csrf_token,
    field_errors,
    form_body,
    log_in,
    signed_in,
)
from tests.foundation.helpers import assert_error, create_provider
from waconnect.dashboard.auth import SESSION_COOKIE
from waconnect.runtime import Runtime
from waconnect.testing.stack import DEMO_TEMPLATE

ADMIN = "admin@example.com"


async def test_pages_need_a_login_and_a_wrong_password_is_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    answer = await client.get("/messages?status=sent")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fmessages%3Fstatus%3Dsent"

    await add_user(runtime, ADMIN)
    wrong = await log_in(client, ADMIN, "not the password")
    assert_page(wrong, 401, "Wrong email or password.")
    assert SESSION_COOKIE not in client.cookies
    unknown = await log_in(client, "nobody@example.com")
    assert_page(unknown, 401, "Wrong email or password.")

    right = await log_in(client, " Admin@Example.com ", next_path="/messages?status=sent")
    assert right.status_code == 303 and right.headers["location"] == "/messages?status=sent"
    cookie = right.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "max-age=43200" in cookie
    home = await client.get("/")
    assert_page(
        home, 200, ADMIN, "Messages by status", "default", "Getting started", "Run a campaign"
    )
    # Only our own script runs, no other site may frame the page, nothing is cached.
    assert "script-src 'self'" in home.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
    assert home.headers["cache-control"] == "no-store"

    # A login link cannot send anyone to another site afterwards.
    client.cookies.clear()
    for elsewhere in ("//evil.example.com/", "/\t/evil.example.com", "https://evil.example.com"):
        away = await log_in(client, ADMIN, next_path=elsewhere)
        assert away.headers["location"] == "/"
        client.cookies.clear()


async def test_logout_ends_the_session_on_the_server(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = await signed_in(client, runtime, ADMIN)
    kept = client.cookies[SESSION_COOKIE]
    answer = await client.post("/logout", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/login?reason=signed_out"
    assert_page(await client.get("/login?reason=signed_out"), 200, "You have logged out.")

    # The cookie a thief copied before the logout opens nothing any more.
    client.cookies.set(SESSION_COOKIE, kept)
    again = await client.get("/settings")
    assert again.headers["location"] == "/login?next=%2Fsettings&reason=unknown"
    # Nor does a cookie that was not made by this deployment.
    client.cookies.set(SESSION_COOKIE, "gAAAAAB-forged")
    assert (await client.get("/settings")).headers["location"].endswith("reason=unknown")


async def test_an_expired_session_is_refused_with_a_clear_page(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = await signed_in(client, runtime, ADMIN)
    runtime.clock.advance(runtime.settings.session_max_age_seconds + 1)

    answer = await client.get("/connect")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fconnect&reason=expired"
    assert_page(await client.get(answer.headers["location"]), 200, "Your session has expired.")

    await signed_in_again(client)
    runtime.clock.advance(runtime.settings.session_max_age_seconds + 1)
    posted = await client.post(
        "/settings/keys",
        data={"csrf_token": token, "label": "late"},
        headers={"referer": "http://waconnect.test/settings"},
    )
    assert_page(
        posted,
        401,
        "Your session has expired",
        "this form was not saved",
        "/login?next=%2Fsettings&amp;reason=expired",
    )
    # htmx calls are sent to the login page as a whole-page redirect.
    await signed_in_again(client)
    runtime.clock.advance(runtime.settings.session_max_age_seconds + 1)
    polled = await client.get(
        "/messages/1/live",
        headers={"HX-Request": "true", "HX-Current-URL": "http://waconnect.test/messages/1"},
    )
    assert polled.status_code == 401
    assert polled.headers["hx-redirect"] == "/login?next=%2Fmessages%2F1&reason=expired"


async def signed_in_again(client: httpx.AsyncClient) -> None:
    answer = await log_in(client, ADMIN)
    assert answer.status_code == 303, answer.text


async def test_the_login_form_needs_its_own_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await add_user(runtime, ADMIN)
    from_elsewhere = await client.post(
        "/login", data={"email": ADMIN, "password": "correct horse battery"}
    )
    assert_page(from_elsewhere, 403, "Form refused", "security token")
    # A token from the page, but without the cookie the page set: another browser's token.
    token = csrf_token(await client.get("/login"))
    client.cookies.clear()
    replayed = await client.post(
        "/login", data={"email": ADMIN, "password": "correct horse battery", "csrf_token": token}
    )
    assert_page(replayed, 403, "Form refused")
    assert SESSION_COOKIE not in client.cookies


async def test_every_form_post_needs_the_session_csrf_token(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = await signed_in(client, runtime, ADMIN)
    auth = {"Authorization": f"Bearer {await new_key(runtime)}"}
    provider = await create_provider(client, auth)
    keys = (await client.get("/api/v1/keys", headers=auth)).json()
    posts = [
        ("/connect/new", {"nickname": "x", "kind": "sandbox", "mobile_number": "918000000009"}),
        (f"/connect/{provider['id']}/edit", {"nickname": "renamed"}),
        (f"/connect/{provider['id']}/rotate-token", {}),
        (f"/connect/{provider['id']}/verify", {}),
        (f"/connect/{provider['id']}/delete", {"confirm": "yes"}),
        ("/settings/keys", {"label": "sneaky"}),
        (f"/settings/keys/{keys[0]['id']}/revoke", {}),
        ("/settings/workspace", {"default_country": "US"}),
        ("/logout", {}),
    ]
    for path, data in posts:
        for sent in ({}, {"csrf_token": "not-the-token"}):
            answer = await client.post(path, data={**data, **sent})
            assert_page(answer, 403, "Form refused", "Reload the page")
    # Nothing above happened.
    after = (await client.get(f"/api/v1/providers/{provider['id']}", headers=auth)).json()
    assert after["nickname"] == provider["nickname"]
    assert after["callbacks"] == provider["callbacks"]
    assert [k["revoked_at"] for k in (await client.get("/api/v1/keys", headers=auth)).json()] == [
        None
    ]
    assert (await client.get("/api/v1/workspace", headers=auth)).json()["settings"][
        "default_country"
    ] == "IN"
    # The header htmx sends is as good as the hidden field.
    rotated = await client.post(
        f"/connect/{provider['id']}/rotate-token", headers={"X-CSRF-Token": token}
    )
    assert rotated.status_code == 303


async def test_another_workspaces_urls_are_refused(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    auth = {"Authorization": f"Bearer {await new_key(runtime)}"}
    provider = await create_provider(client, auth, nickname="Owner line")
    theirs = (await client.get("/api/v1/keys", headers=auth)).json()[0]
    await add_user(runtime, "other@example.com", workspace="other")
    answer = await log_in(client, "other@example.com")
    assert answer.status_code == 303
    token = csrf_token(await client.get("/settings"))

    for path in (f"/connect/{provider['id']}", f"/connect/{provider['id']}/edit"):
        page = assert_page(
            await client.get(path),
            404,
            f"Provider {provider['id']} not found",
            "belongs to another workspace",
        )
        assert provider["nickname"] not in page
    rotate = await client.post(
        f"/connect/{provider['id']}/rotate-token", data={"csrf_token": token}
    )
    assert_page(rotate, 404, f"Provider {provider['id']} not found")
    revoke = await client.post(f"/settings/keys/{theirs['id']}/revoke", data={"csrf_token": token})
    assert_page(revoke, 404, "API key not found")
    listed = assert_page(await client.get("/connect"), 200, "No provider yet")
    assert provider["nickname"] not in listed
    # And the owner's things are untouched.
    after = (await client.get(f"/api/v1/providers/{provider['id']}", headers=auth)).json()
    assert after["callbacks"] == provider["callbacks"]
    assert (await client.get("/api/v1/keys", headers=auth)).json()[0]["revoked_at"] is None


async def test_pages_get_html_errors_and_the_api_keeps_json(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await signed_in(client, runtime, ADMIN)
    assert_page(await client.get("/connect/abc"), 404, "no such page")
    assert_page(await client.get("/connect/99999999999999999999"), 404)
    assert_page(await client.get("/messages/12345"), 404, "Message 12345 not found")
    assert_page(await client.get("/settings/nope"), 404, "There is no page at this address.")
    assert_page(await client.get("/nope", headers={"accept": "text/html"}), 404)
    assert_page(await client.delete("/settings"), 405)
    # The API, even with a browser's session cookie, answers as it always did.
    assert_error(await client.get("/api/v1/providers"), 401, "unauthorized")
    assert_error(await client.get("/nope"), 404, "not_found")
    assert_error(await client.get("/api/v1/providers/abc", headers={"accept": "text/html"}), 401)


async def test_the_provider_form_shows_every_error_inline_then_saves(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = await signed_in(client, runtime, ADMIN)
    bad = form_body(
        csrf_token=token,
        nickname=" ",
        kind="generic",
        mobile_number="12",
        endpoint_url="http://provider.example.com/send",
        max_concurrency="5",
        auth__type="basic",
        auth__username="",
        auth__password="",
        **{"headers.name": ["", "Authkey"], "headers.value": ["orphan", "k-123456789"]},
        auto_reply__enabled="on",
        auto_reply__text="",
    )
    answer = await client.post("/connect/new", data=bad)
    page = assert_page(answer, 422, "things need fixing")
    errors = field_errors(answer)
    assert errors["f-nickname"] == "must not be empty"
    assert "not a phone number" in errors["f-mobile-number"]
    assert errors["f-max-concurrency"] == "must be between 30 and 1000, got 5"
    assert errors["f-auth-username"] == errors["f-auth-password"] == "required"
    assert errors["f-headers"] == "every header with a value needs a name"
    assert "text is required when the auto-reply is enabled" in errors["f-auto-reply-text"]
    assert 'value="k-123456789"' in page  # what was typed stays in the form
    assert 'aria-invalid="true"' in page and 'href="#f-nickname"' in page

    # The service's own checks (http endpoint) come back inline too.
    good_but_http = form_body(
        csrf_token=token,
        nickname="Main line",
        kind="generic",
        mobile_number="+91 88895 00122",
        endpoint_url="http://provider.example.com/send",
        max_concurrency="200",
        auth__type="none",
    )
    answer = await client.post("/connect/new", data=good_but_http)
    assert_page(answer, 422)
    assert "must use https" in field_errors(answer)["f-endpoint-url"]

    answer = await client.post(
        "/connect/new", data={**good_but_http, "endpoint_url": "https://provider.example.com/send"}
    )
    assert answer.status_code == 303
    page = assert_page(
        await client.get(answer.headers["location"]), 200, "Main line", "918889500122"
    )
    auth = {"Authorization": f"Bearer {await new_key(runtime)}"}
    (provider,) = (await client.get("/api/v1/providers", headers=auth)).json()
    assert provider["max_concurrency"] == 200 and provider["is_default"]
    assert provider["callbacks"]["inbound_url"] in page
    assert provider["callbacks"]["delivery_url"] in page

    duplicate = await client.post(
        "/connect/new", data={**good_but_http, "endpoint_url": "https://provider.example.com/x"}
    )
    assert_page(duplicate, 422, "a provider named &#39;Main line&#39; exists already")


async def test_editing_keeps_the_stored_secrets_behind_their_masks(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = await signed_in(client, runtime, ADMIN)
    created = await client.post(
        "/connect/new",
        data=form_body(
            csrf_token=token,
            nickname="Secretive",
            kind="generic",
            mobile_number="918889500122",
            endpoint_url="https://provider.example.com/send",
            max_concurrency="100",
            auth__type="basic",
            auth__username="acme",
            auth__password="basic-password-9876",
            **{
                "headers.name": ["Authkey", "X-Plain"],
                "headers.value": ["authkey-secret-5555", "plain"],
            },
            callback_header__enabled="on",
            callback_header__name="X-Callback-Secret",
            callback_header__value="callback-secret-4321",
        ),
    )
    assert created.status_code == 303, created.text
    provider_path = created.headers["location"].split("?")[0]
    page = assert_page(await client.get(provider_path), 200, "X-Callback-Secret", "••••4321")
    for secret in ("basic-password-9876", "authkey-secret-5555", "callback-secret-4321"):
        assert secret not in page
    edit = assert_page(await client.get(provider_path + "/edit"), 200, "••••9876", "••••5555")

    # Sending the form back as shown (masks and all) changes nothing secret.
    form: dict[str, Any] = form_body(
        csrf_token=token,
        nickname="Secretive renamed",
        mobile_number="918889500122",
        endpoint_url="https://provider.example.com/send",
        max_concurrency="100",
        auth__type="basic",
        auth__username="acme",
        auth__password="••••9876",
        **{"headers.name": ["Authkey", "X-Plain"], "headers.value": ["••••5555", "plain"]},
        callback_header__enabled="on",
        callback_header__name="X-Callback-Secret",
        callback_header__value="••••4321",
    )
    assert 'value="Secretive"' in edit
    saved = await client.post(provider_path + "/edit", data=form)
    assert saved.status_code == 303, saved.text
    from waconnect.providers.service import endpoint_for, get_provider

    async with runtime.sessions() as session:
        config = await get_provider(
            session, config_workspace(provider_path, runtime), int(provider_path.rsplit("/", 1)[1])
        )
        endpoint = endpoint_for(runtime, config)
        header_value = runtime.secrets.decrypt(config.callback_header_value_enc or "")
    assert config.nickname == "Secretive renamed"
    assert endpoint.basic_auth == ("acme", "basic-password-9876")
    assert endpoint.headers["Authkey"] == "authkey-secret-5555"
    assert header_value == "callback-secret-4321"


def config_workspace(_path: str, _runtime: Runtime) -> int:
    return 1  # the default workspace, the first one made


async def test_rotate_and_delete_from_the_provider_page(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = await signed_in(client, runtime, ADMIN)
    auth = {"Authorization": f"Bearer {await new_key(runtime)}"}
    provider = await create_provider(client, auth)
    path = f"/connect/{provider['id']}"
    rotated = await client.post(
        path + "/rotate-token", data={"csrf_token": token, "grace_hours": "2"}
    )
    assert rotated.headers["location"] == path + "?done=rotated"
    after = (await client.get(f"/api/v1/providers/{provider['id']}", headers=auth)).json()
    assert after["callbacks"]["inbound_url"] != provider["callbacks"]["inbound_url"]
    assert_page(
        await client.get(rotated.headers["location"]),
        200,
        "The callback token was rotated",
        after["callbacks"]["inbound_url"],
        "keep working until",
    )
    bad_grace = await client.post(
        path + "/rotate-token", data={"csrf_token": token, "grace_hours": "-1"}
    )
    assert_page(bad_grace, 422, "Grace hours: ")

    # Verify without htmx is the whole page with the answer; with htmx, the answer alone.
    unreachable = await create_provider(
        client, auth, nickname="Nobody home", endpoint_url="https://127.0.0.1:9/send"
    )
    whole = await client.post(f"/connect/{unreachable['id']}/verify", data={"csrf_token": token})
    assert_page(whole, 200, "Callback URLs", "Not verified:", "the provider did not answer")
    part = await client.post(
        f"/connect/{unreachable['id']}/verify",
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    assert "Not verified:" in assert_page(part, 200) and "<html" not in part.text

    unconfirmed = await client.post(path + "/delete", data={"csrf_token": token})
    assert_page(unconfirmed, 422, "Tick the confirmation box")
    deleted = await client.post(path + "/delete", data={"csrf_token": token, "confirm": "yes"})
    assert deleted.headers["location"] == "/connect?done=deleted"
    assert_error(await client.get(f"/api/v1/providers/{provider['id']}", headers=auth), 404)


async def test_workspace_defaults_form(client: httpx.AsyncClient, runtime: Runtime) -> None:
    token = await signed_in(client, runtime, ADMIN)
    form = form_body(
        csrf_token=token,
        default_country="XX",
        timezone="Mars/Olympus",
        dnd__enabled="on",
        dnd__start="25:00",
        dnd__end="09:00",
        frequency_cap__enabled="on",
        frequency_cap__messages="0",
        frequency_cap__hours="24",
        opt_out_keywords="STOP, unsubscribe",
        opt_in_keywords="START",
        new_contact_subscription="subscribed",
        in_doubt_policy="resend",
        in_doubt_wait_minutes="0",
        message_expiry_hours="24",
    )
    answer = await client.post("/settings/workspace", data=form)
    assert_page(answer, 422)
    errors = field_errors(answer)
    assert set(errors) == {
        "f-default-country",
        "f-timezone",
        "f-dnd-start",
        "f-frequency-cap-messages",
        "f-in-doubt-wait-minutes",
    }, errors
    good = {
        **form,
        "default_country": "us",
        "timezone": "America/New_York",
        "dnd.start": "21:30",
        "frequency_cap.messages": "3",
        "in_doubt_wait_minutes": "45",
    }
    saved = await client.post("/settings/workspace", data=good)
    assert saved.status_code == 303
    assert saved.headers["location"] == "/settings?done=saved#workspace"
    assert_page(
        await client.get("/settings?done=saved"),
        200,
        "The workspace settings were saved.",
        'value="America/New_York"',
    )
    auth = {"Authorization": f"Bearer {await new_key(runtime)}"}
    settings = (await client.get("/api/v1/workspace", headers=auth)).json()["settings"]
    assert settings["default_country"] == "US"
    assert settings["dnd"] == {"start": "21:30", "end": "09:00"}
    assert settings["frequency_cap"] == {"messages": 3, "hours": 24}
    assert settings["opt_out_keywords"] == ["STOP", "unsubscribe"]
    assert settings["in_doubt_policy"] == "resend" and settings["in_doubt_wait_minutes"] == 45

    # Turning a switch off clears its part.
    off = {k: v for k, v in good.items() if k not in ("dnd.enabled", "frequency_cap.enabled")}
    assert (await client.post("/settings/workspace", data=off)).status_code == 303
    settings = (await client.get("/api/v1/workspace", headers=auth)).json()["settings"]
    assert settings["dnd"] is None and settings["frequency_cap"] is None


async def test_an_api_key_is_shown_once_and_can_be_revoked(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    token = await signed_in(client, runtime, ADMIN)
    made = await client.post("/settings/keys", data={"csrf_token": token, "label": "order system"})
    page = assert_page(made, 200, "Copy it now: it will not be shown again.", "order system")
    key = page.split('id="new-api-key" type="text" value="', 1)[1].split('"', 1)[0]
    assert key.startswith("wac_")
    assert made.headers["cache-control"] == "no-store"
    auth = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/workspace", headers=auth)).status_code == 200
    later = assert_page(await client.get("/settings"), 200, key[:12])
    assert key not in later

    (row,) = (await client.get("/api/v1/keys", headers=auth)).json()
    revoked = await client.post(f"/settings/keys/{row['id']}/revoke", data={"csrf_token": token})
    assert revoked.headers["location"] == "/settings?done=revoked#keys"
    assert_page(await client.get("/settings"), 200, "revoked")
    assert_error(await client.get("/api/v1/workspace", headers=auth), 401)

    too_long = await client.post("/settings/keys", data={"csrf_token": token, "label": "x" * 201})
    assert_page(too_long, 422)
    assert "at most 200 characters" in field_errors(too_long)["f-label"]


async def test_messages_log_filters_pages_and_a_message_page(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    await signed_in(client, runtime, ADMIN)
    auth = {"Authorization": f"Bearer {await new_key(runtime)}"}
    provider = await create_provider(client, auth, endpoint_url="https://provider.example.com/send")
    made = await client.post(
        f"/api/v1/providers/{provider['id']}/templates", json=DEMO_TEMPLATE, headers=auth
    )
    assert made.status_code == 201, made.text
    batch = [
        {
            "to": f"+91 98000 {n:05d}",
            "template": {
                "name": "order_update",
                "language": "en",
                "components": [
                    {
                        "type": "body",
                        "parameters": [
                            {"type": "text", "text": "Asha"},
                            {"type": "text", "text": f"A-{n}"},
                        ],
                    }
                ],
            },
        }
        for n in range(55)
    ]
    sent = await client.post("/api/v1/messages/batch", json={"messages": batch}, headers=auth)
    assert sent.json()["accepted"] == 55, sent.text

    first = assert_page(await client.get("/messages"), 200, "Older →")
    assert first.count("<tr>") == 51  # the header row and 50 messages
    older = (
        first.split('rel="next"', 1)[0]
        .rsplit('href="', 1)[1]
        .split('"', 1)[0]
        .replace("&amp;", "&")
    )
    second = assert_page(await client.get(older), 200, "← Newest")
    assert second.count("<tr>") == 6 and "Older →" not in second

    one = assert_page(await client.get("/messages?to=%2B91%2098000%2000007"), 200, "919800000007")
    assert one.count("<tr>") == 2
    none = assert_page(
        await client.get("/messages?status=failed"), 200, "No messages match these filters"
    )
    assert "919800000007" not in none
    wrong = await client.get("/messages?to=abc&status=nope&provider_id=999")
    assert_page(wrong, 422)
    assert set(field_errors(wrong)) == {"f-status", "f-provider-id"}
    assert "not a phone number" in field_errors(await client.get("/messages?to=abc"))["f-to"]

    message_id = sent.json()["results"][7]["id"]
    page = assert_page(
        await client.get(f"/messages/{message_id}"),
        200,
        "919800000007",
        "order_update",
        "No attempt yet.",
        "A-7",
        f'hx-get="/messages/{message_id}/live"',  # a queued message keeps its page up to date
    )
    assert provider["nickname"] in page
    live = assert_page(
        await client.get(f"/messages/{message_id}/live", headers={"HX-Request": "true"}), 200
    )
    assert "<html" not in live and 'id="story"' in live


async def test_a_user_adds_another_user_of_the_workspace(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    csrf = await signed_in(client, runtime, ADMIN)
    short = await client.post(
        "/settings/users",
        data={"csrf_token": csrf, "email": "new@example.com", "password": "short"},
    )
    assert "8 to 1000 characters" in field_errors(short)["f-password"]
    assert 'value="new@example.com"' in short.text  # what was typed stays
    added = await client.post(
        "/settings/users",
        data={"csrf_token": csrf, "email": "New@Example.com", "password": "a long password"},
    )
    assert added.status_code == 303, added.text
    assert added.headers["location"] == "/settings?done=user#users"
    assert_page(
        await client.get("/settings?done=user"), 200, "The user was added", "new@example.com"
    )
    twice = await client.post(
        "/settings/users",
        data={"csrf_token": csrf, "email": "new@example.com", "password": "a long password"},
    )
    assert "exists already" in field_errors(twice)["f-email"]
    client.cookies.clear()
    assert (await log_in(client, "new@example.com", "a long password")).status_code == 303
    assert_page(await client.get("/"), 200, "new@example.com", "default")


async def test_the_capability_pages_refuse_forged_forms_and_other_workspaces(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    """Templates, profiles, segments, campaigns, journeys, users: a form without the session's
    token is refused, and another workspace's things are 'not found' to read and to change."""
    await signed_in(client, runtime, ADMIN)
    auth = {"Authorization": f"Bearer {await new_key(runtime)}"}
    provider = await create_provider(client, auth)
    template = (
        await client.post(
            f"/api/v1/providers/{provider['id']}/templates", json=DEMO_TEMPLATE, headers=auth
        )
    ).json()
    rows = [{"identity": "t-1", "phone": "+91 98123 41111", "attributes": {"city": "Pune"}}]
    profile_id = (
        await client.post("/api/v1/profiles/batch", json={"profiles": rows}, headers=auth)
    ).json()["results"][0]["id"]
    segment = (
        await client.post(
            "/api/v1/segments",
            json={
                "name": "All Pune",
                "definition": {"attribute": "city", "op": "eq", "value": "Pune"},
            },
            headers=auth,
        )
    ).json()
    campaign = await client.post(
        "/api/v1/campaigns",
        json={
            "name": "Owned",
            "template_id": template["id"],
            "variables": {"body.1": {"literal": "A"}, "body.2": {"literal": "B"}},
            "audience": {"segment_id": segment["id"]},
        },
        headers=auth,
    )
    assert campaign.status_code == 201, campaign.text
    journey = await client.post(
        "/api/v1/journeys",
        json={
            "name": "Owned journey",
            "trigger": {"type": "api"},
            "start": "done",
            "nodes": {"done": {"type": "exit"}},
        },
        headers=auth,
    )
    assert journey.status_code == 201, journey.text
    ids = {
        "t": template["id"],
        "s": segment["id"],
        "c": campaign.json()["id"],
        "j": journey.json()["id"],
    }
    forms = [
        "/templates/new",
        "/templates/preview",
        "/templates/import",
        f"/templates/{ids['t']}/edit",
        f"/templates/{ids['t']}/test",
        f"/templates/{ids['t']}/delete",
        "/profiles/import",
        "/segments/new",
        "/segments/count",
        f"/segments/{ids['s']}/delete",
        "/campaigns/new",
        f"/campaigns/{ids['c']}/preview",
        f"/campaigns/{ids['c']}/start",
        "/journeys/new",
        f"/journeys/{ids['j']}/simulate",
        f"/journeys/{ids['j']}/publish",
        "/settings/users",
    ]
    for path in forms:
        answer = await client.post(path, data={"csrf_token": "not-the-token", "name": "x"})
        assert_page(answer, 403, "Form refused")
    assert (await client.get(f"/api/v1/templates/{ids['t']}", headers=auth)).status_code == 200
    assert (await client.get(f"/api/v1/campaigns/{ids['c']}", headers=auth)).json()[
        "status"
    ] == "draft"

    await add_user(runtime, "other@example.com", workspace="other")
    client.cookies.clear()
    await log_in(client, "other@example.com")
    token = csrf_token(await client.get("/settings"))
    pages = [
        f"/templates/{ids['t']}",
        f"/templates/{ids['t']}/edit",
        f"/profiles/{profile_id}",
        f"/segments/{ids['s']}",
        f"/campaigns/{ids['c']}",
        f"/campaigns/{ids['c']}/series",
        f"/journeys/{ids['j']}",
        f"/journeys/{ids['j']}/edit",
    ]
    for path in pages:
        assert_page(await client.get(path), 404, "not found", "another workspace")
    for path in (
        f"/templates/{ids['t']}/delete",
        f"/segments/{ids['s']}/delete",
        f"/campaigns/{ids['c']}/start",
        f"/journeys/{ids['j']}/publish",
    ):
        assert_page(await client.post(path, data={"csrf_token": token}), 404, "not found")
    for listing in ("/templates", "/profiles", "/segments", "/campaigns", "/journeys"):
        text = assert_page(await client.get(listing), 200)
        assert "All Pune" not in text and "Owned" not in text and "t-1" not in text
    assert (await client.get(f"/api/v1/campaigns/{ids['c']}", headers=auth)).json()[
        "status"
    ] == "draft"
