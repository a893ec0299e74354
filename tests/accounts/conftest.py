from __future__ import annotations

import pytest

from relaygate.accounts import Accounts, MemoryThrottle, TokenCodec
from relaygate.accounts.passwords import Passwords
from relaygate.db import Database
from relaygate.mail import LocalAdapter, Mailer
from relaygate.pubsub import MemoryPubSub
from tests.accounts.support import FAST_HASHER
from tests.conftest import TEST_SECRET


@pytest.fixture
def accounts(db: Database) -> Accounts:
    return Accounts(
        db,
        MemoryPubSub(),
        TokenCodec(TEST_SECRET, 3600),
        Mailer(LocalAdapter(), "no-reply@relaygate.test", backoff=0.01),
        MemoryThrottle(),
        Passwords(FAST_HASHER),
    )
