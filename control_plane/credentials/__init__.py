"""Secrets that sandboxes use without holding them: stored encrypted, injected by Envoy on inspected HTTPS."""
