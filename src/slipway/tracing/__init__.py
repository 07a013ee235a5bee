"""Build traces (docs/traces.md): OpenTelemetry spans of each build from its submit to
its last push, kept with the build and exported over OTLP when configured."""
