"""Gate snapshots take the recogniser's turn before camera frames."""

from __future__ import annotations

import asyncio

from recognition.priority import Priority, PriorityTurns


async def test_waiting_gate_snapshots_go_before_waiting_camera_frames() -> None:
    turns = PriorityTurns()
    order: list[str] = []
    release = asyncio.Event()

    async def work(name: str, priority: Priority, hold: asyncio.Event | None = None) -> None:
        async with turns.turn(priority):
            order.append(name)
            if hold is not None:
                await hold.wait()

    first = asyncio.create_task(work("frame-1", Priority.CAMERA, release))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(work("frame-2", Priority.CAMERA))]
    await asyncio.sleep(0)
    waiting += [
        asyncio.create_task(work("gate-1", Priority.GATE)),
        asyncio.create_task(work("frame-3", Priority.CAMERA)),
    ]
    await asyncio.sleep(0)
    waiting.append(asyncio.create_task(work("gate-2", Priority.GATE)))
    await asyncio.sleep(0)
    assert turns.waiting == 4
    release.set()
    await asyncio.gather(first, *waiting)
    assert order == ["frame-1", "gate-1", "gate-2", "frame-2", "frame-3"]


async def test_a_cancelled_waiter_does_not_keep_the_turn() -> None:
    turns = PriorityTurns()
    release = asyncio.Event()
    done: list[str] = []

    async def hold() -> None:
        async with turns.turn(Priority.CAMERA):
            await release.wait()

    async def work(name: str) -> None:
        async with turns.turn(Priority.GATE):
            done.append(name)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(work("cancelled"))
    later = asyncio.create_task(work("later"))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await asyncio.gather(holder, later)
    assert done == ["later"]
    async with asyncio.timeout(1):
        await work("after")
    assert done == ["later", "after"]
