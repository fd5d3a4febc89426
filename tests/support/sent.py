"""Tasks queued by name, recorded instead of sent (a stand-in for the broker, named as such):
for tests that count what a step queues, not what a worker then does."""

from __future__ import annotations

from typing import Any


class SentTasks:
    """Patched over a module's `signature`: each `signature(name, args, kwargs=...)
    .apply_async()` is recorded in `calls` as (name, kwargs), positional arguments under their
    index ("0", "1", ...)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(
        self, name: str, args: tuple[Any, ...] = (), *, kwargs: dict[str, Any] | None = None
    ) -> Any:
        calls = self.calls
        recorded: dict[str, Any] = {str(index): value for index, value in enumerate(args)}
        recorded.update(kwargs or {})

        class _Signature:
            def apply_async(self) -> None:
                calls.append((name, recorded))

        return _Signature()

    def named(self, name: str) -> list[dict[str, Any]]:
        return [kwargs for called, kwargs in self.calls if called == name]
