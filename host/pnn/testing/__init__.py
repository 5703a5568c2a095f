"""Fault injection and simulated fleets for tests and benches; nothing in production imports this package.

Modules: faults (Faults, FaultyTransport, FaultyCable, faulty_device, Interrupter), simserve
(`python -m pnn.testing.simserve`: many simulated boards behind a real broker).
"""
