"""The sessions API against the running service (real servers and Envoy, in-memory runtime): errors name the
field and leave nothing behind; auth, paging, health and reflection."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from control_plane.client import SessionsClient
from tests.support.service import SandgateClient, SandgateProcess

BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"egress": [{"host": "*.*"}]}, "egress[0].host"),
    ({"egress": [{"host": ""}]}, "egress[0].host"),
    ({"egress": [{"host": "ok.test"}, {"host": "bad host.test"}]}, "egress[1].host"),
    ({"egress": [{"host": "ok.test", "ports": [0]}]}, "egress[0].ports"),
    ({"egress": [{"host": "ok.test", "ports": [70000]}]}, "egress[0].ports"),
    ({"egress": [{"host": "ok.test", "methods": ["FETCH"]}]}, "egress[0].methods"),
    ({"ttl_seconds": 0}, "ttl_seconds"),
    ({"ttl_seconds": 10**7}, "ttl_seconds"),
    ({"image": "no-such-image:never"}, "image"),
    ({"limits": {"pids": 10}}, "limits.pids"),
    ({"limits": {"memory_mb": 1}}, "limits.memory_mb"),
    ({"env": {"HTTP_PROXY": "http://evil"}}, "env"),
    ({"labels": {"bad key!": "x"}}, "labels"),
]


def _footprint(client: SandgateClient) -> tuple[int, set[str]]:
    """Sessions and session directories; that the runtime started nothing either, tests/unit/test_manager.py shows."""
    return len(client.list().sessions), {p.name for p in (client.proc.state_dir / "sessions").iterdir()}


@pytest.mark.parametrize(("request_fields", "field"), BAD_CREATES)
def test_bad_create_names_the_field_and_creates_nothing(
    client: SandgateClient, request_fields: dict[str, Any], field: str
) -> None:
    before = _footprint(client)
    with pytest.raises(grpc.RpcError) as err:
        client.create(**request_fields)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in err.value.details()
    assert _footprint(client) == before


@pytest.mark.parametrize("call", ["get", "exec"])
def test_unknown_session_is_not_found(client: SandgateClient, call: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.get("s-0000000000000000") if call == "get" else client.exec("s-0000000000000000", ["true"])
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "s-0000000000000000" in err.value.details()


def test_malformed_session_id_is_invalid(client: SandgateClient) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.get("../../etc")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "session_id" in err.value.details()


def test_delete_of_unknown_session_is_idempotent(client: SandgateClient) -> None:
    client.delete("s-0000000000000000")


@pytest.mark.parametrize("token", ["", "wrong-token"])
def test_calls_without_the_api_token_are_unauthenticated(sandgate: SandgateProcess, token: str) -> None:
    anonymous = SessionsClient(f"127.0.0.1:{sandgate.grpc_port}", token)
    for call in (
        lambda: anonymous.list(),
        lambda: anonymous.create(),
        lambda: anonymous.exec("s-0000000000000000", ["true"]),
    ):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    anonymous.close()


def test_list_filters_by_label_and_pages(client: SandgateClient) -> None:
    ids = {client.create(labels={"suite": "list"}).id for _ in range(3)}
    client.create(labels={"suite": "other"})
    first = client.list(labels={"suite": "list"}, page_size=2)
    second = client.list(labels={"suite": "list"}, page_size=2, page_token=first.next_page_token)
    assert len(first.sessions) == 2 and first.next_page_token and not second.next_page_token
    assert {s.id for s in [*first.sessions, *second.sessions]} == ids
    assert all(s.token == "" for s in first.sessions)


def test_health_and_reflection_are_on_for_grpcurl(sandgate: SandgateProcess) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{sandgate.grpc_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="sandgate.v1.Sessions"), timeout=5
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        services = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {"sandgate.v1.Sessions", "grpc.health.v1.Health"} <= services
