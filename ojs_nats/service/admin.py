"""Administrative use cases that are not part of a job's life."""

from __future__ import annotations

from ojs_nats.service.context import Context


async def reset(ctx: Context) -> None:
    """Wipe all state (the conformance runner's --reset-url; enabled only for tests)."""
    await ctx.storage.reset()
