.PHONY: setup run test test-fast bench lint
setup:
	scripts/setup.sh

run: setup
	.venv/bin/sandgate serve

test:
	scripts/test.sh

# Unit and service tiers only: real servers and a real Envoy over the in-memory runtime, no dockerd (after `make setup`).
test-fast:
	.venv/bin/python -m pytest tests/unit tests/service -q

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench: setup
	gcc -O2 -o build/tunnels bench/tunnels.c
	.venv/bin/python -m bench.dataplane --rounds 5 --seconds 5
	.venv/bin/python -m bench.audit --rounds 3 --seconds 10
	.venv/bin/python -m bench.restart --rounds 5
	.venv/bin/python -m bench.filter_costs --seconds 4
	.venv/bin/python -m bench.decode --rounds 5
	.venv/bin/python -m bench.memory --scales 1,100,1000
	.venv/bin/python -m bench.density --sessions 1000 --steps 1,250,500,750,1000 --parallel 4
	.venv/bin/python -m bench.push_latency --rounds 40 --scales 1,100,1000
	.venv/bin/python -m bench.session_start --rounds 20
	.venv/bin/python -m bench.in_sandbox --rounds 3 --seconds 5
	.venv/bin/python -m bench.tunnels_in_sandbox --rounds 3 --seconds 5
	.venv/bin/python -m bench.inspect --rounds 3 --seconds 4 --sessions 50
