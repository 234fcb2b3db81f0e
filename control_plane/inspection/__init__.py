"""HTTPS inspection: each session's own CA, the leaf certificates Envoy serves, and the sandbox's trust bundle."""
