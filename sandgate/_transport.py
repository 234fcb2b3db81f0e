"""The two wires under the SDK, async: gRPC (sessions) and HTTP (admin). Both open lazily, on the
running event loop, and turn every failure into the SDK's typed exceptions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import grpc
import grpc.aio

from sandgate import errors
from sandgate.discovery import Endpoints

SERVICE_PATH = "/sandgate.v1.Sessions/"
MAX_MESSAGE = 17 << 20  # WriteFile's 16 MiB, and room for the envelope


class Grpc:
    """The sessions API: unary calls with the client's timeout, streams with the caller's."""

    def __init__(self, endpoints: Endpoints, timeout: float) -> None:
        self._endpoints, self.timeout = endpoints, timeout
        self._channel: grpc.aio.Channel | None = None

    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            options = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
            self._channel = grpc.aio.insecure_channel(self._endpoints.grpc_addr, options=options)
        return self._channel

    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self._endpoints.sessions_token()}"),)

    async def unary(self, method: str, request: Any, response_type: Any) -> Any:
        call = self.channel().unary_unary(
            SERVICE_PATH + method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        try:
            return await call(request, metadata=self.metadata(), timeout=self.timeout)
        except grpc.RpcError as exc:
            raise errors.from_grpc(exc) from None

    def unary_stream(self, method: str, request: Any, response_type: Any, timeout: float | None) -> Any:
        call = self.channel().unary_stream(
            SERVICE_PATH + method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        return call(request, metadata=self.metadata(), timeout=timeout)

    def stream_stream(self, method: str, request_type: Any, response_type: Any, timeout: float | None) -> Any:
        call = self.channel().stream_stream(
            SERVICE_PATH + method,
            request_serializer=request_type.SerializeToString,
            response_deserializer=response_type.FromString,
        )
        return call(metadata=self.metadata(), timeout=timeout)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


def path(*segments: str) -> str:
    """`/v1/...` with every segment percent-encoded (a CIDR's `/`, a wildcard's `*`)."""
    return "/v1/" + "/".join(quote(s, safe="") for s in segments)


class Admin:
    """The admin HTTP API: JSON calls, and server-sent events."""

    def __init__(self, endpoints: Endpoints, timeout: float) -> None:
        self._endpoints, self._timeout = endpoints, timeout
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            self._http = aiohttp.ClientSession(f"http://{self._endpoints.admin_addr}")
        return self._http

    def _headers(self, accept: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._endpoints.admin_bearer()}", "Accept": accept}

    async def call(
        self, method: str, route: str, body: Any = None, query: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """One JSON request; the decoded body (`{}` for none), or the typed error the service answered."""
        url = route + (f"?{urlencode(query)}" if query else "")
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        try:
            async with self._session().request(
                method, url, json=body, headers=self._headers("application/json"), timeout=timeout
            ) as resp:
                payload = await resp.read()
                if resp.status >= 400:
                    raise errors.from_http(resp.status, payload)
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise errors.Unavailable(f"cannot reach the admin API at {self._endpoints.admin_addr}: {exc}") from None
        return json.loads(payload) if payload else {}

    async def events(self, route: str, query: Mapping[str, str]) -> AsyncIterator[dict[str, Any]]:
        """The `data:` payloads of a server-sent event stream, decoded, for as long as it lasts."""
        url = route + (f"?{urlencode(query)}" if query else "")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout)
        try:
            async with self._session().get(url, headers=self._headers("text/event-stream"), timeout=timeout) as resp:
                if resp.status >= 400:
                    raise errors.from_http(resp.status, await resp.read())
                async for line in resp.content:
                    if line.startswith(b"data: "):
                        yield json.loads(line[6:])
        except aiohttp.ClientConnectionError as exc:
            raise errors.Unavailable(f"the admin API at {self._endpoints.admin_addr} went away: {exc}") from None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
