"""The JSON shape of ``/v1/history``, for its OpenAPI description."""

from __future__ import annotations

from pydantic import BaseModel, Field

from srvdns.api.schemas import rfc3339
from srvdns.history import StatusEvent
from srvdns.model import Status


class CheckChangeOut(BaseModel):
    """A check whose status moved in an event."""

    id: str
    from_: Status | None = Field(alias="from", description="null: the check is new")
    to: Status | None = Field(description="null: the check was removed")
    output: str = Field(description="the check's output at the change")


class StatusEventOut(BaseModel):
    """An instance registered, deregistered, or changed status."""

    time: str = Field(description="RFC 3339 UTC")
    time_unix: float
    service: str
    instance: str
    from_: Status | None = Field(alias="from", description="null: registered")
    to: Status | None = Field(description="null: deregistered")
    checks: list[CheckChangeOut]

    @classmethod
    def of(cls, event: StatusEvent) -> StatusEventOut:
        """Report ``event``."""
        return cls.model_validate(
            {
                "time": rfc3339(event.time),
                "time_unix": event.time,
                "service": event.service,
                "instance": event.instance,
                "from": event.before,
                "to": event.after,
                "checks": [
                    {"id": c.id, "from": c.before, "to": c.after, "output": c.output}
                    for c in event.checks
                ],
            }
        )


class HistoryOut(BaseModel):
    """Status changes the process saw, oldest first."""

    now: float = Field(description="the server's clock, Unix seconds")
    started: float = Field(description="when this process began recording, Unix seconds")
    retention: float = Field(description="seconds an event is kept")
    events: list[StatusEventOut]
