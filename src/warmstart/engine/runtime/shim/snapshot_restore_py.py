"""SnapStart runtime hooks, as the Lambda Python runtime ships them (`snapshot_restore_py`).

Register callables to run before the snapshot is taken (in reverse order of registration) and
after each restore (in order). Both work as decorators or as calls with arguments:

    from snapshot_restore_py import register_after_restore, register_before_snapshot

    @register_before_snapshot
    def close_connections(): ...

    register_after_restore(reconnect, "db", retries=3)
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["register_after_restore", "register_before_snapshot"]

_Hook = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]
_before_snapshot: list[_Hook] = []
_after_restore: list[_Hook] = []


def register_before_snapshot(
    func: Callable[..., Any], *args: Any, **kwargs: Any
) -> Callable[..., Any]:
    """Run func(*args, **kwargs) before the snapshot is taken; returns func (a decorator)."""
    _before_snapshot.append((func, args, kwargs))
    return func


def register_after_restore(
    func: Callable[..., Any], *args: Any, **kwargs: Any
) -> Callable[..., Any]:
    """Run func(*args, **kwargs) in every environment restored from the snapshot; returns func."""
    _after_restore.append((func, args, kwargs))
    return func


def get_before_snapshot() -> list[_Hook]:
    return _before_snapshot


def get_after_restore() -> list[_Hook]:
    return _after_restore
