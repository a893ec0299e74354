"""Fixtures for channel tests: a fresh endpoint factory with the test socket mounted."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.channels import Endpoint
from relaygate.pubsub import MemoryPubSub
from tests.channels.support import EndpointFactory, RoomChannel, make_socket


@pytest.fixture
def make_endpoint() -> EndpointFactory:
    RoomChannel.terminated.clear()

    def factory(**options: Any) -> Endpoint:
        endpoint = Endpoint(MemoryPubSub(), **options)
        endpoint.add_socket(make_socket())
        return endpoint

    return factory
