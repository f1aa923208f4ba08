"""Pure domain code: the job envelope, its lifecycle and the time arithmetic. No I/O here."""
