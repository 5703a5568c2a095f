"""Wi-Fi station join for boards (ESP32, Pico W); the unix port has no `network` and never calls this."""

import time


class WiFi:
    """Joins one access point and re-joins it when the link drops.

    Args:
        ssid, password: the network (from secrets.json on the board).
        timeout_s: how long one join attempt may take before ensure() raises OSError.
    """

    def __init__(self, ssid: str, password: str, timeout_s: int = 20) -> None:
        import network

        self.ssid = ssid
        self.password = password
        self.timeout_s = timeout_s
        self.wlan = network.WLAN(network.STA_IF)

    def ensure(self) -> None:
        """Return once connected; raise OSError when the join times out (the caller backs off)."""
        w = self.wlan
        if w.isconnected():
            return
        w.active(True)
        try:
            w.config(pm=0xA11140)  # no power save: it adds tens of ms to every reply (CYW43 boards)
        except (ValueError, OSError, TypeError):
            pass  # ESP32: no such option, or set differently; latency is still fine
        w.connect(self.ssid, self.password)
        t0 = time.ticks_ms()
        while not w.isconnected():
            if time.ticks_diff(time.ticks_ms(), t0) > self.timeout_s * 1000:
                w.disconnect()
                raise OSError("Wi-Fi: could not join %r in %d s" % (self.ssid, self.timeout_s))
            time.sleep_ms(100)
