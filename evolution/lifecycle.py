"""The champion/challenger lifecycle: who may trade, and on what evidence (pure; no Ray, MLflow).

A genome that passes the backtest gate (:mod:`evolution.gate`) becomes a **candidate**. With
``promotion.require_approval: false`` it moves on to **probation** at once; with ``true`` it
waits for ``alphaloop pool approve ID`` (or ``pool reject ID --reason TEXT``, which retires it).
A probation genome trades in the arena on a small allocation (``probation_share`` of each
persona's budget, in ``configs/arena.yaml``) until its paper record decides.
"""

from __future__ import annotations

from pydantic import Field

from alphaloop.config import FrozenConfig


class PromotionConfig(FrozenConfig):
    """Settings of the paper stage (``promotion:`` in ``configs/evolution.yaml``)."""

    require_approval: bool = Field(
        False, description="candidates wait for `alphaloop pool approve ID` before probation"
    )
    paper_days: int = Field(20, ge=1, le=1000, description="paper days before promotion")
