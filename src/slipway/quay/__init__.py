"""Quay mode: the parts of Quay's shared state a build manager reads and writes, each
with Quay's own semantics (docs/quay-contract.md): the `queueitem` queue, the
`repositorybuild` rows and their tokens, the build logs in BUILDLOGS_REDIS, user-file
storage, notifications, and the decryption of Quay's encrypted fields."""
