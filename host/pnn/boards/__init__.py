"""Tools for a person at a bench: discover boards, probe one, flash, calibrate, run a simulated board.

Modules: discover (list_devices), probe (`python -m pnn.boards.probe URL`), knock (what answers on a
port: pnn firmware or a bare REPL), diagnose (why a board does not answer), flash, calibrate,
simboard (`pnn sim-board`). `python -m pnn.boards` lists boards as `pnn devices` does.
"""
