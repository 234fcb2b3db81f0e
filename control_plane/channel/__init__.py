"""The control channel: how Envoy and the control plane reach and authenticate each other (xDS, ext_authz, ALS)."""
