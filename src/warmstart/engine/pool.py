"""The environments of one function version: idle ones (most recently used first) and the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .environment import Environment

if TYPE_CHECKING:
    from .service import Version

__all__ = ["Pool"]


class Pool:
    """Bookkeeping only; the Service's lock guards every field.

    `idle` and `idle_provisioned` are stacks: the most recently used environment is reused
    first, which keeps the rest idle long enough to be reaped, as Lambda does.
    """

    __slots__ = (
        "envs",
        "idle",
        "idle_provisioned",
        "provisioned",
        "provisioned_target",
        "provisioning",
        "retired",
        "version",
    )

    def __init__(self, version: Version) -> None:
        self.version = version
        self.idle: list[Environment] = []
        self.idle_provisioned: list[Environment] = []
        self.envs: set[Environment] = set()  # every live environment, idle, busy or in INIT
        self.provisioned_target = 0
        self.provisioning = 0  # provisioned environments asked for, not yet in `envs`
        # Provisioned concurrency as the API reports it: status, reason, when it was asked for.
        self.provisioned: dict[str, object] = {}
        self.retired = False  # its version's configuration changed: discard envs as they free up

    def provisioned_count(self) -> int:
        return sum(1 for e in self.envs if e.init_type == "provisioned-concurrency")

    def take_idle(self) -> list[Environment]:
        """Remove and return every idle environment (to shut them down)."""
        out = self.idle + self.idle_provisioned
        self.idle.clear()
        self.idle_provisioned.clear()
        for env in out:
            self.envs.discard(env)
        return out
