"""Use cases named after the spec's operations (push, fetch, ack, fail, beat, cancel, info, ...).

The service decides whether an operation is legal (through `model`) and in which order its writes
go to JetStream (through `storage`), so that a crash between any two writes leaves a job that
still runs, at worst twice. It knows nothing about HTTP.
"""
