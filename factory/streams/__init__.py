"""Monitors of the event bus beyond the console: Packer's machine-readable stream, the per-build results and
step table, Prometheus metrics and the HTML report. Each is a subscriber of factory.events.EventBus; none is
called by a step."""
