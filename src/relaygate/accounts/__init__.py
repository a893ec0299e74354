"""The accounts context: users, password hashing, access tokens, revocation, socket auth."""

from relaygate.contexts.accounts.errors import (
    AccountsError,
    InvalidCredentials,
    InvalidInput,
    LoginThrottled,
    NotAllowed,
    UserNotFound,
)
from relaygate.contexts.accounts.principal import Account, Principal, Session
from relaygate.contexts.accounts.schemas import Credentials, NewUser, UserChanges, UserPatch
from relaygate.contexts.accounts.service import Accounts
from relaygate.contexts.accounts.sockets import (
    socket_authenticator,
    socket_id,
    socket_topics,
    token_socket_topic,
    user_socket_id,
)
from relaygate.contexts.accounts.throttle import LoginThrottle, MemoryThrottle, RedisThrottle
from relaygate.contexts.accounts.tokens import TokenCodec

__all__ = [
    "Account",
    "Accounts",
    "AccountsError",
    "Credentials",
    "InvalidCredentials",
    "InvalidInput",
    "LoginThrottle",
    "LoginThrottled",
    "MemoryThrottle",
    "NewUser",
    "NotAllowed",
    "Principal",
    "RedisThrottle",
    "Session",
    "TokenCodec",
    "UserChanges",
    "UserNotFound",
    "UserPatch",
    "socket_authenticator",
    "socket_id",
    "socket_topics",
    "token_socket_topic",
    "user_socket_id",
]
