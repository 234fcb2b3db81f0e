"""The data path end to end, from inside a real sandbox: a separate line, not the listener ratio.

    .venv/bin/python -m bench.in_sandbox [--rounds 3] [--seconds 5]

One runsc sandbox of the real service, allowed to reach a loopback upstream (a second Envoy answering
200). The same client program (stdlib Python, one keep-alive connection, sequential GETs through the
proxy for a fixed time) runs inside the sandbox, where it goes through the in-sandbox forwarder to the
session's listener, and on the host straight to the same listener's unix socket. Rounds alternate.
The ratio is the cost of the sandbox (gVisor's network stack and the forwarder), not of the policy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from bench.from_tests import DnsServer, SandgateProcess, free_port
from bench.harness import RATES_OUT_OF_REACH, UPSTREAM
from control_plane.envoy_process import default_binary

# Runs in the sandbox's python3 and on the host; stdlib only. argv: url seconds [unix_socket token]
CLIENT = r"""
import base64, http.client, json, os, socket, sys, time, urllib.parse
url, seconds = sys.argv[1], float(sys.argv[2])
if len(sys.argv) > 3:
    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(sys.argv[3])
    conn, creds = Conn("localhost"), "sandgate:" + sys.argv[4]
else:
    proxy = urllib.parse.urlsplit(os.environ["HTTP_PROXY"])
    conn = http.client.HTTPConnection(proxy.hostname, proxy.port)
    creds = urllib.parse.unquote(proxy.username) + ":" + urllib.parse.unquote(proxy.password)
headers = {"Proxy-Authorization": "Basic " + base64.b64encode(creds.encode()).decode()}
times, end = [], time.monotonic() + seconds
while time.monotonic() < end:
    start = time.monotonic()
    conn.request("GET", url, headers=headers)
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
    times.append(time.monotonic() - start)
times.sort()
p50, p99 = times[len(times) // 2] * 1e3, times[int(len(times) * .99)] * 1e3
print(json.dumps({"rps": len(times) / seconds, "p50": p50, "p99": p99}))
"""


def main(rounds: int, seconds: int) -> None:
    up = free_port()
    with tempfile.TemporaryDirectory() as tmp, DnsServer({"allowed.test": "127.0.0.1"}) as dns:
        config = Path(tmp) / "upstream.yaml"
        config.write_text(UPSTREAM.read_text().replace("PORT", str(up)))
        flags = ["--disable-hot-restart", "--concurrency", "1", "--log-level", "error"]
        upstream = subprocess.Popen([str(default_binary()), "-c", str(config), *flags])
        service = SandgateProcess(Path(tmp) / "state", dns.port, **RATES_OUT_OF_REACH).start()
        try:
            with service.client() as c:
                session = c.create(egress=[{"host": "allowed.test", "ports": [up]}])
                sock = service.state_dir / "sessions" / session.id / "proxy.sock"
                url = f"http://allowed.test:{up}/"
                inside, host = [], []
                for _ in range(rounds):
                    result = c.exec(session.id, ["python3", "-c", CLIENT, url, str(seconds)], timeout_seconds=60)
                    assert result.exit_code == 0, result.stderr.decode()
                    inside.append(json.loads(result.stdout))
                    out = subprocess.run(["python3", "-c", CLIENT, url, str(seconds), str(sock), session.token],
                                         check=True, capture_output=True, text=True).stdout  # fmt: skip
                    host.append(json.loads(out))
                c.delete(session.id)
        finally:
            service.stop()
            upstream.terminate()
            upstream.wait()
    report(inside, host, rounds, seconds)


def report(inside: list[dict[str, float]], host: list[dict[str, float]], rounds: int, seconds: int) -> None:
    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    ratios = [i["rps"] / h["rps"] for i, h in zip(inside, host, strict=True)]
    print(f"command: python -m bench.in_sandbox --rounds {rounds} --seconds {seconds}")
    print("| client | requests/s | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    print(f"| on the host, at the session's unix socket | {med(host, 'rps'):.0f} | {med(host, 'p50'):.2f} | "
          f"{med(host, 'p99'):.2f} |")  # fmt: skip
    print(f"| inside the sandbox, through its forwarder | {med(inside, 'rps'):.0f} | {med(inside, 'p50'):.2f} | "
          f"{med(inside, 'p99'):.2f} |")  # fmt: skip
    print(f"\ninside / host requests/s: {statistics.median(ratios):.2f} (spread {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    main(args.rounds, args.seconds)
