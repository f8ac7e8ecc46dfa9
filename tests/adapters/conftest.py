"""Shared stored templates and endpoints for the adapter tests (plain data, no I/O)."""

from __future__ import annotations

import pytest

from tests.adapters.samples import WABA
from waconnect.providers.adapters.base import ProviderEndpoint


@pytest.fixture
def generic_endpoint() -> ProviderEndpoint:
    return ProviderEndpoint(
        kind="generic",
        endpoint_url="https://bsp.example.org/send",
        mobile_number=WABA,
        headers={"Authkey": "abcdef123456", "Content-type": "application/json"},
        basic_auth=("user", "s3cret-pass"),
    )


@pytest.fixture
def msg91_endpoint() -> ProviderEndpoint:
    return ProviderEndpoint(
        kind="msg91",
        endpoint_url="https://api.msg91.com/api/v5/whatsapp/",
        mobile_number=WABA,
        headers={"authkey": "412345ABCDEFabcdef"},
        basic_auth=None,
        batch_size=100,
    )
