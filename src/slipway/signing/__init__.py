"""Signed, attested builds (docs/signing.md): sigstore image signatures, SLSA provenance in
DSSE envelopes, and the key they are made with."""
