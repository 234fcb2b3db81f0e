"""A small client for the admin HTTP API (standard library only), used by the CLI and the tests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any


class AdminError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str = "") -> None:
        super().__init__(f"{code}: {message}" + (f" (field: {field})" if field else ""))
        self.status, self.code, self.field = status, code, field


class AdminClient:
    def __init__(self, address: str, token: str, timeout: float = 60.0) -> None:
        self._base = f"http://{address}"
        self._token = token
        self._timeout = timeout

    def _request(
        self, method: str, path: str, body: Any = None, accept: str = "application/json"
    ) -> urllib.request.Request:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self._base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self._token}")
        req.add_header("Accept", accept)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        return req

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(self._request(method, path, body), timeout=self._timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as err:
            raise _error(err.code, err.read()) from None
        return json.loads(payload) if payload else {}

    def follow(self, path: str) -> Iterator[dict[str, Any]]:
        """Server-sent events of `path`, one decoded `data:` payload at a time."""
        req = self._request("GET", path, accept="text/event-stream")
        try:
            with urllib.request.urlopen(req, timeout=None) as resp:
                for line in resp:
                    if line.startswith(b"data: "):
                        yield json.loads(line[6:])
        except urllib.error.HTTPError as err:
            raise _error(err.code, err.read()) from None


def _error(status: int, payload: bytes) -> AdminError:
    try:
        body = json.loads(payload)["error"]
        return AdminError(status, body.get("code", "error"), body.get("message", ""), body.get("field", ""))
    except (ValueError, KeyError, TypeError):
        return AdminError(status, "http_error", payload.decode(errors="replace")[:200])
