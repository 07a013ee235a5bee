"""Pure domain model: phases, the phase state machine, results. No I/O."""
