"""The ephemeral build manager: scheduling, lifecycle, and the gRPC servicer."""
