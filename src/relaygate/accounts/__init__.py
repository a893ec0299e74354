"""The accounts context: users, password hashing, access tokens, revocation, socket auth."""

from relaygate.accounts.errors import (
    AccountsError,
    InvalidCredentials,
    InvalidInput,
    LoginThrottled,
    NotAllowed,
    UserNotFound,
)
from relaygate.accounts.models import RevokedToken, User
from relaygate.accounts.principal import Account, Principal, Session
from relaygate.accounts.schemas import Credentials, NewUser, QuickSignUp, UserChanges, UserPatch
from relaygate.accounts.service import UNKNOWN, Accounts, Identity
from relaygate.accounts.sockets import (
    socket_authenticator,
    socket_id,
    socket_topics,
    token_socket_topic,
    user_socket_id,
)
from relaygate.accounts.throttle import LoginThrottle, MemoryThrottle, RedisThrottle
from relaygate.accounts.tokens import TokenCodec

__all__ = [
    "UNKNOWN",
    "Account",
    "Accounts",
    "AccountsError",
    "Credentials",
    "Identity",
    "InvalidCredentials",
    "InvalidInput",
    "LoginThrottle",
    "LoginThrottled",
    "MemoryThrottle",
    "NewUser",
    "NotAllowed",
    "Principal",
    "QuickSignUp",
    "RedisThrottle",
    "RevokedToken",
    "Session",
    "TokenCodec",
    "User",
    "UserChanges",
    "UserNotFound",
    "UserPatch",
    "socket_authenticator",
    "socket_id",
    "socket_topics",
    "token_socket_topic",
    "user_socket_id",
]
