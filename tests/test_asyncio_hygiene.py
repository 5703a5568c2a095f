"""The conftest check that fails a test when asyncio reports an exception nobody retrieved."""

from __future__ import annotations

import asyncio
import gc

from conftest import NEVER_RETRIEVED


def test_an_unretrieved_future_exception_is_caught_by_the_check() -> None:
    before = len(NEVER_RETRIEVED.reports)

    async def leak() -> None:
        fut = asyncio.get_running_loop().create_future()
        fut.set_exception(ConnectionError("nobody looks at me"))
        del fut  # dropped unread: asyncio logs "Future exception was never retrieved"

    asyncio.run(leak())
    gc.collect()
    caught = NEVER_RETRIEVED.reports[before:]
    del NEVER_RETRIEVED.reports[before:]  # (this test's own leak must not fail it)
    assert len(caught) == 1 and "never retrieved" in caught[0] and "nobody looks at me" in caught[0]


def test_a_retrieved_one_is_not_reported() -> None:
    before = len(NEVER_RETRIEVED.reports)

    async def read() -> None:
        fut = asyncio.get_running_loop().create_future()
        fut.set_exception(ConnectionError("seen"))
        assert isinstance(fut.exception(), ConnectionError)

    asyncio.run(read())
    gc.collect()
    assert NEVER_RETRIEVED.reports[before:] == []


def test_a_pending_task_destroyed_is_caught_by_the_check() -> None:
    before = len(NEVER_RETRIEVED.reports)
    loop = asyncio.new_event_loop()

    async def forever() -> None:
        await asyncio.get_running_loop().create_future()  # never set

    task = loop.create_task(forever())
    loop.run_until_complete(asyncio.sleep(0))  # it runs to its await, then the loop is dropped under it
    loop.close()
    del task, loop
    gc.collect()
    caught = NEVER_RETRIEVED.reports[before:]
    del NEVER_RETRIEVED.reports[before:]
    assert len(caught) == 1 and "destroyed but it is pending" in caught[0], caught
