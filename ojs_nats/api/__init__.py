"""The OJS HTTP binding on FastAPI: one router per resource, one error handler, no state."""
