"""ojs-nats: an Open Job Spec server on NATS JetStream."""

__version__ = "0.1.0"
