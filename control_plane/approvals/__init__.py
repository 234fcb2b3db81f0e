"""Approvals: a request to a destination no rule covers, held until an operator decides; and rules a sandbox
proposes. `book` is the pure state machine, `desk` holds requests and applies outcomes, `sandbox_api` is
what a sandbox reaches at http://sandgate.internal through its own proxy."""
