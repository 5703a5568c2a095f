"""The msgpack subset of protocol v1, in pure Python for CPython and MicroPython alike.

Types: nil, bool, int (-2**63 .. 2**64-1), float (decode 32/64-bit, encode 64-bit), str (UTF-8), bin, array,
map with str keys. Not in the subset: ext types, non-str map keys, duplicate keys, nesting deeper than
MAX_DEPTH. The encoder writes the smallest form, exactly as msgpack-python's packb(use_bin_type=True) does,
and writes map keys in sorted order, so both interpreters give identical bytes for the same message.
Bin values decode to memoryview slices of the input (no copy): they live as long as the input buffer.
"""

import struct

from .compat import const

MAX_DEPTH = const(8)


class DecodeError(ValueError):
    """Bytes that are not one well-formed value of the v1 msgpack subset."""


def _bytes_like(x):
    return isinstance(x, (bytes, bytearray, memoryview))


class Packer:
    """msgpack writer: into a growing bytearray (buf=None), or into a preallocated one (firmware).

    With a preallocated buffer the message goes to buf[base : base + n], at most `cap` bytes
    (reset(base, cap) picks the window), so one pool can hold several messages.

    Args:
        buf: preallocated bytearray to write into, or None for a growing one.
    """

    def __init__(self, buf=None):
        self.fixed = buf is not None
        self.buf = buf if buf is not None else bytearray()
        self.mv = memoryview(self.buf) if self.fixed else None
        self.base = 0
        self.cap = len(self.buf) if self.fixed else -1
        self.n = 0

    def reset(self, base=0, cap=-1):
        """Start a new message at buf[base] with room for cap bytes (-1: to the end of buf)."""
        self.n = 0
        if self.fixed:
            self.base = base
            self.cap = len(self.buf) - base if cap < 0 else cap
        else:
            self.buf = bytearray()

    def getvalue(self):
        """The message written since reset(): a memoryview for a fixed buffer, the bytearray otherwise."""
        return self.mv[self.base : self.base + self.n] if self.fixed else self.buf

    def write(self, data):
        """Append raw bytes (bytes-like)."""
        k = len(data)
        if self.fixed:
            if self.n + k > self.cap:
                raise OverflowError("message does not fit its %d-byte buffer" % self.cap)
            i = self.base + self.n
            self.mv[i : i + k] = data
        else:
            self.buf += data
        self.n += k

    def _head(self, fmt, tag, v):
        # one struct.pack per header keeps this readable; headers are few per message
        self.write(struct.pack(fmt, tag, v))

    def pack_int(self, v):
        if 0 <= v < 0x80:
            self.write(bytes((v,)))
        elif -32 <= v < 0:
            self.write(bytes((v & 0xFF,)))
        elif v >= 0:
            if v < 0x100:
                self._head(">BB", 0xCC, v)
            elif v < 0x10000:
                self._head(">BH", 0xCD, v)
            elif v < 0x100000000:
                self._head(">BI", 0xCE, v)
            elif v < 0x10000000000000000:
                self._head(">BQ", 0xCF, v)
            else:
                raise OverflowError("int too large for msgpack")
        elif v >= -0x80:
            self._head(">Bb", 0xD0, v)
        elif v >= -0x8000:
            self._head(">Bh", 0xD1, v)
        elif v >= -0x80000000:
            self._head(">Bi", 0xD2, v)
        elif v >= -0x8000000000000000:
            self._head(">Bq", 0xD3, v)
        else:
            raise OverflowError("int too small for msgpack")

    def pack_str(self, s):
        b = s.encode("utf-8")
        k = len(b)
        if k < 32:
            self.write(bytes((0xA0 | k,)))
        elif k < 0x100:
            self._head(">BB", 0xD9, k)
        elif k < 0x10000:
            self._head(">BH", 0xDA, k)
        else:
            self._head(">BI", 0xDB, k)
        self.write(b)

    def pack_bin_header(self, k):
        """Header of a bin of k bytes; the caller writes the bytes (lets the firmware copy straight in)."""
        if k < 0x100:
            self._head(">BB", 0xC4, k)
        elif k < 0x10000:
            self._head(">BH", 0xC5, k)
        else:
            self._head(">BI", 0xC6, k)

    def pack_array_header(self, k):
        if k < 16:
            self.write(bytes((0x90 | k,)))
        elif k < 0x10000:
            self._head(">BH", 0xDC, k)
        else:
            self._head(">BI", 0xDD, k)

    def pack_map_header(self, k):
        if k < 16:
            self.write(bytes((0x80 | k,)))
        elif k < 0x10000:
            self._head(">BH", 0xDE, k)
        else:
            self._head(">BI", 0xDF, k)

    def pack(self, obj, depth=0):
        """Append one value of the subset (dict keys must be str)."""
        if depth > MAX_DEPTH:
            raise ValueError("nesting deeper than %d" % MAX_DEPTH)
        if obj is None:
            self.write(b"\xc0")
        elif obj is True:
            self.write(b"\xc3")
        elif obj is False:
            self.write(b"\xc2")
        elif isinstance(obj, int):
            self.pack_int(obj)
        elif isinstance(obj, float):
            self.write(struct.pack(">Bd", 0xCB, obj))
        elif isinstance(obj, str):
            self.pack_str(obj)
        elif _bytes_like(obj):
            self.pack_bin_header(len(obj))
            self.write(obj)
        elif isinstance(obj, (list, tuple)):
            self.pack_array_header(len(obj))
            for x in obj:
                self.pack(x, depth + 1)
        elif isinstance(obj, dict):
            self.pack_map_header(len(obj))
            for k in sorted(obj):  # MicroPython dicts are unordered: sort so both interpreters agree
                if not isinstance(k, str):
                    raise TypeError("map keys must be str")
                self.pack_str(k)
                self.pack(obj[k], depth + 1)
        else:
            raise TypeError("cannot pack %s" % type(obj).__name__)


def packb(obj):
    """msgpack bytes of obj (the v1 subset, canonical form)."""
    p = Packer()
    p.pack(obj)
    return bytes(p.buf)


# Fixed-size heads: tag -> (struct format, size of what follows the tag)
_FIXED = {
    0xCC: (">B", 1),
    0xCD: (">H", 2),
    0xCE: (">I", 4),
    0xCF: (">Q", 8),
    0xD0: (">b", 1),
    0xD1: (">h", 2),
    0xD2: (">i", 4),
    0xD3: (">q", 8),
    0xCA: (">f", 4),
    0xCB: (">d", 8),
}
# Length-prefixed heads: tag -> (kind, struct format of the length, its size)
_SIZED = {
    0xD9: ("s", ">B", 1),
    0xDA: ("s", ">H", 2),
    0xDB: ("s", ">I", 4),
    0xC4: ("b", ">B", 1),
    0xC5: ("b", ">H", 2),
    0xC6: ("b", ">I", 4),
    0xDC: ("a", ">H", 2),
    0xDD: ("a", ">I", 4),
    0xDE: ("m", ">H", 2),
    0xDF: ("m", ">I", 4),
}


UNBOUNDED = const(0x3FFFFFFF)  # a budget never reached (and a small int on 32-bit MicroPython: no bignum)


class Reader:
    """Decodes the v1 subset from a bytes-like object, within an allocation budget.

    Args:
        data: the encoded bytes (bin values come back as memoryviews into it).
        max_items: container entries (map pairs + array items, all levels) the whole value may hold.
        max_str: bytes of str keys and values the whole value may hold (bin blobs do not count).

    A value over the budget is refused with DecodeError before the excess is allocated: the firmware
    gives each request a budget its heap can hold (SPEC section 2).
    """

    def __init__(self, data, max_items=UNBOUNDED, max_str=UNBOUNDED):
        self.mv = memoryview(data)
        self.end = len(self.mv)
        self.i = 0
        self.max_items, self.max_str = max_items, max_str
        self.items, self.str_bytes = max_items, max_str  # what is left of the budget

    def read(self):
        """Exactly one value; DecodeError if malformed, outside the subset or the budget, or followed by more bytes."""
        v = self.value(0)
        if self.i != self.end:
            raise DecodeError("%d trailing bytes after the msgpack value" % (self.end - self.i))
        return v

    def need(self, k):
        if self.i + k > self.end:
            raise DecodeError("truncated msgpack: need %d bytes at offset %d" % (k, self.i))

    def value(self, depth):
        if depth > MAX_DEPTH:
            raise DecodeError("nesting deeper than %d" % MAX_DEPTH)
        self.need(1)
        tag = self.mv[self.i]
        self.i += 1
        if tag < 0x80:
            return tag
        if tag >= 0xE0:
            return tag - 0x100
        if tag < 0x90:
            return self.container("m", tag & 0x0F, depth)
        if tag < 0xA0:
            return self.container("a", tag & 0x0F, depth)
        if tag < 0xC0:
            return self.blob("s", tag & 0x1F)
        if tag == 0xC0:
            return None
        if tag == 0xC2:
            return False
        if tag == 0xC3:
            return True
        f = _FIXED.get(tag)
        if f is not None:
            self.need(f[1])
            v = struct.unpack_from(f[0], self.mv, self.i)[0]
            self.i += f[1]
            return v
        s = _SIZED.get(tag)
        if s is None:
            raise DecodeError("msgpack type 0x%02x is not in the protocol subset" % tag)
        self.need(s[2])
        k = struct.unpack_from(s[1], self.mv, self.i)[0]
        self.i += s[2]
        if s[0] in ("s", "b"):
            return self.blob(s[0], k)
        return self.container(s[0], k, depth)

    def blob(self, kind, k):
        if kind == "s":
            self.str_bytes -= k
            if self.str_bytes < 0:
                raise DecodeError("request holds more than %d bytes of strings" % self.max_str)
        self.need(k)
        v = self.mv[self.i : self.i + k]
        self.i += k
        if kind == "b":
            return v
        try:
            return str(bytes(v), "utf-8")
        except UnicodeError:
            raise DecodeError("invalid UTF-8 in str")

    def container(self, kind, k, depth):
        self.items -= k
        if self.items < 0:
            raise DecodeError("request holds more than %d container entries" % self.max_items)
        # every element takes at least one byte: refuse impossible counts before allocating anything
        if k * (2 if kind == "m" else 1) > self.end - self.i:
            raise DecodeError(
                "container of %d items cannot fit the remaining %d bytes" % (k, self.end - self.i)
            )
        if kind == "a":
            return [self.value(depth + 1) for _ in range(k)]
        d = {}
        for _ in range(k):
            key = self.value(depth + 1)
            if not isinstance(key, str):
                raise DecodeError("map key is not a str")
            if key in d:
                raise DecodeError("duplicate map key %r" % key)
            d[key] = self.value(depth + 1)
        return d


def unpackb(data):
    """Decode exactly one value from a bytes-like object (bin values are memoryviews into it).

    Raises:
        DecodeError: malformed, outside the subset, or trailing bytes.
    """
    return Reader(data).read()
