"""The kubernetes and kubernetesPodman executors: a worker as a Kubernetes/OpenShift Job."""
