"""Logout closes only the sockets of the revoked token; deleting the user closes all of theirs."""

from __future__ import annotations

from relaygate.accounts import Credentials, NewUser
from relaygate.channels.testing import ChannelClient
from relaygate.node import Node

PASSWORD = "correct horse battery"


async def test_logout_and_deletion_disconnect_the_right_sockets(node: Node) -> None:
    account = await node.accounts.register(
        NewUser(name="Ada", subname="Lovelace", email="ada@example.com", job="Engineer", password=PASSWORD)
    )
    credentials = Credentials(email="ada@example.com", password=PASSWORD)
    phone, laptop = [await node.accounts.login(credentials) for _ in range(2)]
    socket = node.endpoint.sockets[0]
    phone_client = await ChannelClient.connect(node.endpoint, socket, {"token": phone.token})
    laptop_client = await ChannelClient.connect(node.endpoint, socket, {"token": laptop.token})
    await phone_client.join(f"user:{account.id}")
    await laptop_client.join(f"user:{account.id}")

    principal = await node.accounts.authenticate_token(phone.token)
    assert principal is not None
    await node.accounts.logout(principal)
    assert await phone_client.assert_closed(1001) == 1001
    inbox = await laptop_client.join("room:still-here")
    assert inbox.topic == "room:still-here"

    laptop_principal = await node.accounts.authenticate_token(laptop.token)
    assert laptop_principal is not None
    await node.accounts.delete_user(laptop_principal, account.id)
    assert await laptop_client.assert_closed(1001) == 1001
