"""What differs between the two interpreters the protocol runs on, in one place.

`const(x)`: MicroPython's compile-time constant (`micropython.const`: folded into the bytecode, no
dictionary lookup at run time); on CPython, x itself.
"""

try:
    from micropython import const
except ImportError:

    def const(x):
        return x
