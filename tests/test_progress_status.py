"""The progress bar says, while an outage lasts, which board the run waits for and since when: the text
is read live at each refresh (rich redraws from its own thread), not only when an epoch ends."""

from __future__ import annotations

import io
import time

import torch
from rich.console import Console
from toy_systems import LeakyTanh

from pnn.counting import counting
from pnn.devices import connect
from pnn.progress import progress, system_status


def test_the_bar_shows_which_board_an_outage_waits_for_while_it_lasts() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=250, color_system=None)
    with connect("sim://electronic?seed=2&n_in=16&n_out=8&noise=off&heartbeat=0.1", patience=60) as board:
        system = counting(board)  # as the training loop sees it
        board(torch.rand(2, 16))
        bar = progress(range(2), "training x", console=console, status=system_status(system))
        seen = ""
        for epoch in bar:
            if epoch == 0:
                assert board.waiting == "", "nothing is waited for while the link is up"
                board.aio.transport.unplug(60.0)  # the board goes away mid-epoch
                deadline = time.monotonic() + 30
                while "waiting for" not in seen and time.monotonic() < deadline:
                    assert bar._progress is not None
                    bar._progress.refresh()
                    seen = out.getvalue()
                    time.sleep(0.05)
    assert f"waiting for {board.id} since " in seen, seen[-500:]
    stamp = seen.split(f"waiting for {board.id} since ")[-1][:8]
    assert time.strptime(stamp, "%H:%M:%S"), stamp  # since when, as the clock says


def test_no_status_text_for_a_system_that_states_none() -> None:
    status = system_status(counting(LeakyTanh(4, 3)))
    assert status() == ""
