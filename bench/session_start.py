"""CreateSession to READY, cold and from the warm pool, side by side with a bare
`docker run --runtime=runsc-sandgate` of the same image, interleaved in one run.

    .venv/bin/python -m bench.session_start [--rounds 20]

The control plane runs as `sandgate serve` (its own process, managed Envoy, warm pool of 2), and is
called over gRPC as a client would. A cold start is forced by asking for non-default limits. Deletions
and pool refills happen between samples and are not timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import docker

from bench.from_tests import DnsServer, SandgateProcess
from bench.harness import summary

IMAGE = "sandgate-sandbox:latest"


def bare_run(client: docker.DockerClient) -> float:
    start = time.perf_counter()
    container = client.containers.run(
        IMAGE, ["sleep", "60"], detach=True, runtime="runsc-sandgate", network_mode="none",
        read_only=True, cap_drop=["ALL"], user="65534:65534", pids_limit=512, mem_limit="512m",
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    container.remove(force=True)
    return elapsed * 1000


def wait_for_pool(proc: SandgateProcess, client: docker.DockerClient, sessions: int) -> None:
    deadline = time.monotonic() + 60
    while len(client.containers.list(filters={"label": f"sandgate.node={proc.node_id}"})) < sessions + 2:
        if time.monotonic() > deadline:
            raise TimeoutError("warm pool did not refill")
        time.sleep(0.05)
    time.sleep(0.3)  # let the last start settle so it does not overlap the next sample


def main(rounds: int) -> None:
    docker_client = docker.from_env()
    results: dict[str, list[float]] = {"bare docker run (runsc)": [], "CreateSession, cold": [],
                                       "CreateSession, warm pool": []}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, DnsServer({}) as dns:
        proc = SandgateProcess(Path(tmp) / "state", dns.port, warm_pool_size=2).start()
        try:
            with proc.client() as c:
                for _ in range(rounds):
                    results["bare docker run (runsc)"].append(bare_run(docker_client))
                    for kind, limits in (("cold", {"memory_mb": 384}), ("warm pool", None)):
                        wait_for_pool(proc, docker_client, 0)
                        start = time.perf_counter()
                        s = c.create(limits=limits)
                        results[f"CreateSession, {kind}"].append((time.perf_counter() - start) * 1000)
                        assert s.state == 2
                        c.delete(s.id)
        finally:
            proc.stop()
    print(f"command: python -m bench.session_start --rounds {rounds}")
    print("| path | ms to READY |")
    print("|---|---|")
    for name, values in results.items():
        print(f"| {name} | {summary(values)} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    main(parser.parse_args().rounds)
