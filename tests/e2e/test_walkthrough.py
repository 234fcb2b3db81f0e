"""The README's five-minute walkthrough, run as written against the running service."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.support.service import SandgateProcess
from tests.support.upstream import Upstream

REPO = Path(__file__).resolve().parents[2]


def walkthrough() -> str:
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- walkthrough:start -->")[1].split("<!-- walkthrough:end -->")[0]
    return re.search(r"```sh\n(.*?)```", block, re.S).group(1)  # type: ignore[union-attr]


def test_readme_walkthrough_works_as_written(sandgate: SandgateProcess) -> None:
    env = {
        **os.environ,
        "SANDGATE_GRPC_ADDR": f"127.0.0.1:{sandgate.grpc_port}",
        "SANDGATE_ADMIN_ADDR": f"127.0.0.1:{sandgate.admin_port}",
        "SANDGATE_API_TOKEN": sandgate.api_token,
        "SANDGATE_ADMIN_TOKEN": sandgate.admin_token,
    }
    with Upstream(port=80):  # example.com, through the tests' DNS server, is this loopback upstream
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", walkthrough()], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("403") < out.index("applied: every Envoy has ACKed the change") < out.index("\n200\n")
    assert re.search(r"GET\s+example\.com\s+80\s+deny\s+host-not-allowed\s+403", out)
    assert re.search(r"GET\s+example\.com\s+80\s+allow\s+allowed\s+200", out)
    assert "ended s-" in out
