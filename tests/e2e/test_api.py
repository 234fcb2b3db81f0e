"""The sessions API against the real service with real sandboxes: Exec's streams and exit code, and an image
that docker does not have. The rest of the API's cases run in tests/service/test_api.py, without dockerd."""

from __future__ import annotations

import docker
import grpc
import pytest

from tests.e2e.conftest import SandgateClient


def test_an_image_docker_does_not_have_is_invalid_and_starts_no_container(
    client: SandgateClient, docker_client: docker.DockerClient
) -> None:
    node = {"label": f"sandgate.node={client.proc.node_id}"}
    before = len(docker_client.containers.list(all=True, filters=node))
    with pytest.raises(grpc.RpcError) as err:
        client.create(image="no-such-image:never")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "image" in err.value.details()
    assert len(docker_client.containers.list(all=True, filters=node)) == before


def test_exec_streams_output_and_exit_code(client: SandgateClient) -> None:
    s = client.create()
    result = client.exec(s.id, ["sh", "-c", "cat; echo err >&2; exit 3"], stdin=b"in\n")
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"in\n", b"err\n")
    timed_out = client.exec(s.id, ["sleep", "30"], timeout_seconds=1)
    assert timed_out.exit_code == 124
