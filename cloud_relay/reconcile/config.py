"""``[reconcile]``: when the scheduled reconcile run happens."""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, field_validator


class ReconcileConfig(BaseModel):
    """The scheduled comparison of the relay's ledgers with Odoo."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Run on the schedule while the relay runs (needs ``[odoo]``)."""
    schedule: str = "30 2 * * *"
    """A crontab line (minute hour day month weekday), in UTC; default nightly at 02:30."""

    @field_validator("schedule")
    @classmethod
    def _crontab(cls, value: str) -> str:
        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"not a crontab line (minute hour day month weekday): {exc}") from exc
        return value

    def trigger(self) -> CronTrigger:
        """The schedule as an APScheduler trigger."""
        return CronTrigger.from_crontab(self.schedule, timezone="UTC")
