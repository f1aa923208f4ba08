"""Consumers of fired timers: every gateway replica runs one; JetStream shares the work."""
