"""The forwarder is static: a user image with nothing but busybox still gets a working proxy."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import docker
import pytest

from tests.e2e.conftest import SandgateClient
from tests.support.upstream import Upstream

MINIMAL_IMAGE = "sandgate-test-minimal:latest"


@pytest.fixture(scope="module")
def minimal_image(docker_client: docker.DockerClient) -> str:
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static is installed by `make setup`"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(busybox, arcname="bin/busybox")
        for applet in ("sh", "wget", "cat", "env", "ls"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for directory in ("tmp", "run/sandgate"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777
            tar.addfile(info)
    path = Path("/tmp") / "sandgate-minimal.tar"
    path.write_bytes(buf.getvalue())
    docker_client.api.import_image_from_file(str(path), repository="sandgate-test-minimal", tag="latest",
                                             changes=["ENV PATH=/bin"])  # fmt: skip
    path.unlink()
    return MINIMAL_IMAGE


def test_minimal_image_reaches_allowed_host(
    client: SandgateClient, minimal_image: str, http_upstream: Upstream
) -> None:
    s = client.create(image=minimal_image, egress=[{"host": "allowed.test", "ports": [http_upstream.port]}])
    code, out, err = client.sh(s.id, f"wget -q -O - http://allowed.test:{http_upstream.port}/minimal")
    assert code == 0, err
    assert '"path": "/minimal"' in out
    code, out, _ = client.sh(s.id, f"wget -q -O - http://other.test:{http_upstream.port}/ 2>&1")
    assert code != 0 and "403" in out
