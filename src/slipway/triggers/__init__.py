"""Build triggers: git repositories bound to image repositories (docs/triggers.md)."""
