"""The backends slipway serves builds from, one chosen at start from the configuration
(`choose.py`): slipway's own tables (`sql.py`), or Quay's database, queue and build logs
(`quay.py`, Quay mode). Only these modules know which one runs."""
