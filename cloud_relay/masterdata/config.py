"""The ``[bom]`` section: what counts as released, who may approve, how a revision becomes
the one Odoo picks."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class BomConfig(BaseModel):
    """BOM publishing options."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Run the publishing job in this replica (needs ``[odoo]``)."""
    released_statuses: tuple[str, ...] = ("released",)
    """PLM lifecycle statuses a revision may have to be accepted (compared case-insensitively)."""
    four_eyes: bool = True
    """The approver must be another person than the submitter."""
    activation: Literal["archive", "sequence"] = "archive"
    """How a published revision becomes current: ``archive`` the BOMs Odoo used before (they
    stay readable, open MOs keep them), or give it a ``sequence`` below theirs (they stay
    active)."""
    sequence: int = Field(default=10, ge=0)
    """The ``sequence`` of published BOMs in ``archive`` mode."""
    poll_seconds: float = Field(default=5.0, gt=0)
    """How often the job looks for approved revisions that are due."""
    lease_seconds: float = Field(default=60.0, gt=0)
    """How long one replica holds the publishing lease without renewing it."""
    external_id_module: str = Field(default="plant_link_bom", pattern=r"^[a-z][a-z0-9_]*$")
    """The module part of the external ids of published BOMs, lines and operations."""
