"""Running slipway itself on Kubernetes and OpenShift."""
