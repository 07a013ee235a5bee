"""slipway: a container-image build service compatible with Red Hat Quay's build manager."""

__version__ = "0.1.0"
