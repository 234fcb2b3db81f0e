"""Register the runsc-sandgate runtime in dockerd's daemon.json, keeping whatever else is there.

runsc's own --network=none gives a sandbox loopback only (gVisor's netstack cannot run in the root
network namespace on this kernel), and --host-uds=open lets it connect to its session's unix socket.
"""

import json
import shutil
import sys
from pathlib import Path

RUNTIME = {"path": shutil.which("runsc") or "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--host-uds=open"]}

path = Path(sys.argv[1])
fresh = not path.exists()
config = {} if fresh else json.loads(path.read_text() or "{}")
before = json.dumps(config, sort_keys=True)
config.setdefault("runtimes", {})["runsc-sandgate"] = RUNTIME
if fresh:
    # Sandgate needs no docker networking at all: no default bridge, no iptables changes.
    config.update({"bridge": "none", "iptables": False})
if json.dumps(config, sort_keys=True) != before:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")
