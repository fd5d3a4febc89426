"""The live-alert websocket: a signed-in user joins the groups their role allows, nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model

from access.policy import groups_for_user
from alerts.live import WEBSOCKET_HEARTBEAT_SECONDS, websocket_client_closed, websocket_client_seen

# Close codes in the 4000 range are the application's; browsers show them to alerts.js.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
# A message is passed on only if the user's roles, read at most this long ago, still put them in
# the group it came through: a removed admin stops hearing their old site within a second, not
# at the next heartbeat.
ROLES_FRESH_SECONDS = 1.0


def _current_groups(user_pk: int) -> list[str]:
    # The session's user object is as it was at connect: read the account again.
    user = get_user_model().objects.filter(pk=user_pk).first()
    return groups_for_user(user) if user is not None else []


class AlertConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    async def connect(self) -> None:
        self.joined: list[str] = []
        self.heartbeat: asyncio.Task[None] | None = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        groups = await database_sync_to_async(groups_for_user)(user)
        if not groups:
            # Signed in with no role: there is nothing this user may hear.
            await self.close(code=CLOSE_FORBIDDEN)
            return
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = groups
        self.roles_read_at = time.monotonic()
        await self.accept()
        await websocket_client_seen(self.channel_name)
        self.heartbeat = asyncio.create_task(self._vouch_while_open())

    async def _vouch_while_open(self) -> None:
        while True:
            await asyncio.sleep(WEBSOCKET_HEARTBEAT_SECONDS)
            await websocket_client_seen(self.channel_name)
            if not await self._rejoin_current_groups():
                await self.close(code=CLOSE_FORBIDDEN)
                return

    async def _rejoin_current_groups(self) -> bool:
        """Follow the user's roles as they are now; False when none is left.

        Groups are chosen at connect, but an admin removed from a site or an expert whose
        profile is deleted must stop hearing its alerts on a socket that is already open, and a
        deactivated account hears nothing. Re-adding the kept groups also renews their
        membership, which the Redis channel layer otherwise expires after a day.
        """
        groups = await database_sync_to_async(_current_groups)(self.scope["user"].pk)
        for group in set(self.joined) - set(groups):
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.joined = groups
        self.roles_read_at = time.monotonic()
        return bool(groups)

    async def disconnect(self, code: int) -> None:
        heartbeat = getattr(self, "heartbeat", None)
        if heartbeat is not None:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        if getattr(self, "joined", []):
            await websocket_client_closed(self.channel_name)
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # The socket is one-way; a ping lets a client check the connection end to end.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def broadcast(self, event: dict[str, Any]) -> None:
        stale = time.monotonic() - getattr(self, "roles_read_at", 0.0) > ROLES_FRESH_SECONDS
        if stale and not await self._rejoin_current_groups():
            await self.close(code=CLOSE_FORBIDDEN)
            return
        group = event.get("group")
        if group is not None and group not in self.joined:
            return  # sent to a group this user has left since
        await self.send_json(event["message"])
