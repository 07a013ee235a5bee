"""The local executor: a worker as a child process of the manager."""
