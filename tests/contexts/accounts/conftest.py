from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from relaygate.contexts.accounts import Accounts, MemoryThrottle, TokenCodec
from relaygate.contexts.accounts.passwords import Passwords
from relaygate.db import Database
from relaygate.mail import LocalAdapter, Mailer
from relaygate.pubsub import MemoryPubSub
from tests.conftest import TEST_SECRET

# Real argon2id with cheap parameters: the production cost (~0.3 s a hash here) would make the
# suite slow; tests/contexts/accounts/test_passwords.py checks the production parameters.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


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
