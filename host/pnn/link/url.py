"""Device URLs: parse and check `sim://`, `serial://` and `mqtt://` addresses into one typed record.

Every bad URL is a BadURL (a ValueError) whose one line says what is wrong and names the accepted forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import UserError

FORMS = (
    "sim://electronic?seed=3&realtime=1&n_in=64&n_out=64, "
    "serial:///dev/ttyACM0?n_in=64&n_out=64&rate=20000, "
    "mqtt://host:1883/<device-id>?user=...&password=..."
)

# name -> (type, default, what it is). Shared by every scheme.
_COMMON: dict[str, tuple[type, Any, str]] = {
    "n_in": (int, 64, "drive samples per example"),
    "n_out": (int, 64, "response bins per example"),
    "rate": (int, 20_000, "sample clock, samples/s"),
    "settle": (int, 8, "ticks at rest before each example"),
    "oversample": (int, 1, "ADC reads averaged per tick"),
    "window": (int, 4, "requests in flight (lowered, with a warning, to the RESULTs the board's cache keeps)"),
    "chunk": (int, 0, "examples per request (0: the most the device takes)"),
    "timeout": (float, 1.0, "retransmission timeout before any round trip is measured, seconds (RFC 6298's 1 s)"),
    "min_rto": (float, 0.02, "least retransmission timeout, seconds (the board's work time is added)"),
    "max_rto": (float, 8.0, "most retransmission timeout after backoff, seconds (the board's work time is added)"),
    "give_up": (float, 30.0, "seconds a request may go unanswered on a live link, beyond its board time, "
                             "before the link is declared down"),
    "retries": (int, 3, "ignored: requests give up by time (give_up), never by a count of re-sends"),
    "heartbeat": (float, 1.0, "seconds of silence before a PING probes the link (0: off)"),
    "probes": (int, 5, "unanswered PINGs in a row that declare the link down"),
    "reconnect": (float, 10.0, "seconds connect() waits for the first HELLO before it fails"),
    "patience": (float, 600.0, "seconds requests wait for a lost board to come back before OutageError"),
    "rest_code": (int, None, "DAC code held between examples, set with CONFIG on every connect (default: the board's)"),
    "dac_lo": (int, None, "DAC code for drive 0.0 (default 0)"),
    "dac_hi": (int, None, "DAC code for drive 1.0 (default the top code)"),
    "adc_lo": (int, None, "ADC code read as response 0.0 (default 0)"),
    "adc_hi": (int, None, "ADC code read as response 1.0 (default the top code)"),
}
_SCHEME: dict[str, dict[str, tuple[type, Any, str]]] = {
    "sim": {
        "seed": (int, 0, "board seed (unit-to-unit variation)"),
        "realtime": (bool, False, "take the time a real board would"),
        "noise": (str, "default", "default | off"),
        "dac_bits": (int, 8, "DAC bit depth"),
        "adc_bits": (int, 12, "ADC bit depth"),
        "max_batch": (int, 64, "examples per request the board accepts"),
        "drop": (float, 0.0, "fraction of replies the simulated link loses"),
        "substeps": (int, 0, "integrator sub-steps per tick (0: the physics default)"),
    },
    "serial": {"baud": (int, 115_200, "baud rate (ignored by USB CDC)")},
    "mqtt": {
        "user": (str, "", "broker user name"),
        "password": (str, "", "broker password"),
        "prefix": (str, "pnn", "topic prefix"),
        "tls": (bool, False, "TLS to the broker (its TLS listener, usually port 8883)"),
        "ca": (str, "", "CA certificate (PEM file) the broker's must be signed by (default: the system's)"),
    },
}


class BadURL(UserError, ValueError):
    """A device URL that cannot be used. `problem` is the reason alone; with `forms` the message also
    names the accepted forms."""

    def __init__(self, problem: str, forms: bool = False) -> None:
        self.problem, self.forms = problem, forms
        super().__init__(f"{problem}; use one of: {FORMS}" if forms else problem)


# Parameters that change the measurement (kept in the device id); the rest are link tuning or secrets.
_IDENTITY = ("seed", "noise", "substeps", "dac_bits", "adc_bits", "n_in", "n_out", "rate", "settle", "oversample",
             "dac_lo", "dac_hi", "adc_lo", "adc_hi", "rest_code")


def _parse_value(name: str, kind: type, text: str) -> Any:
    try:
        if kind is bool:
            if text.lower() not in ("0", "1", "true", "false", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("1", "true", "yes")
        return kind(text)
    except ValueError:
        raise BadURL(f"URL parameter {name}={text!r} is not a valid {kind.__name__}") from None


@dataclass(frozen=True)
class DeviceURL:
    """A parsed device address.

    Attributes:
        scheme: "sim", "serial" or "mqtt".
        target: the sim kind, the serial port path, or the MQTT device id.
        host, port: the MQTT broker (empty / 0 otherwise).
        params: every parameter of the scheme, with defaults filled in.
        text: the URL as given.
    """

    scheme: str
    target: str
    host: str = ""
    port: int = 0
    params: dict[str, Any] = field(default_factory=dict, repr=False)  # (secrets: never in a repr)
    text: str = field(default="", repr=False)

    def __getitem__(self, name: str) -> Any:
        return self.params[name]

    @property
    def id(self) -> str:
        """A stable name for the unit: no secrets or link tuning, only what changes its measurements."""
        base = {
            "sim": f"sim://{self.target}",
            "serial": f"serial://{self.target}",
            "mqtt": f"mqtt://{self.host}:{self.port}/{self.target}",
        }[self.scheme]
        given = dict(parse_qsl(urlsplit(self.text).query))
        keep = [f"{k}={given[k]}" for k in _IDENTITY if k in given]
        return base + ("?" + "&".join(keep) if keep else "")


def redact(text: str) -> str:
    """`text` with every URL password (`password=...`, `user:password@`) replaced by ***."""
    text = re.sub(r"(password=)[^&#'\"\s]*", r"\1***", text)
    return re.sub(r"(://[^/:@'\"\s]*:)[^@/'\"\s]*@", r"\1***@", text)


def parse_url(url: str) -> DeviceURL:
    """Parse a device URL; raises BadURL (one line, naming the accepted forms) if it is not one.

    The error never shows the URL's password.
    """
    try:
        return _parse_url(url)
    except BadURL as e:
        raise BadURL(redact(e.problem), e.forms) from None
    except ValueError as e:  # what urllib says about a malformed address
        raise BadURL(redact(str(e))) from None


def _parse_url(url: str) -> DeviceURL:
    if not isinstance(url, str) or "://" not in url:
        raise BadURL(f"not a device URL: {url!r}", forms=True)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _SCHEME:
        raise BadURL(f"unknown URL scheme {parts.scheme!r} in {url!r}", forms=True)
    known = {**_COMMON, **_SCHEME[scheme]}
    params = {name: default for name, (_, default, _) in known.items()}
    try:
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise BadURL(f"malformed query string in {url!r}", forms=True) from None
    for name, text in query:
        if name not in known:
            raise BadURL(f"unknown parameter {name!r} in {url!r}; {scheme}:// takes: {', '.join(known)}")
        params[name] = _parse_value(name, known[name][0], text)
    host, port = "", 0
    if scheme == "sim":
        target = (parts.netloc + parts.path).strip("/").lower()
        from ..physics import KINDS  # (only a sim:// URL needs the simulated systems)

        if target not in KINDS:
            raise BadURL(f"unknown simulated system {target!r} in {url!r}; choose one of {', '.join(KINDS)}")
        if params["noise"] not in ("default", "off"):
            raise BadURL(f"noise={params['noise']!r} in {url!r}; use noise=default or noise=off")
    elif scheme == "serial":
        target = unquote(parts.path)
        if parts.netloc or not target.startswith("/"):
            raise BadURL(f"serial URL {url!r} needs an absolute port path (three slashes)", forms=True)
    else:
        target = unquote(parts.path).strip("/")
        try:
            host, port = parts.hostname or "", parts.port or 1883
        except ValueError:
            raise BadURL(f"bad broker port in {url!r}", forms=True) from None
        if not host or not target or "/" in target or "+" in target or "#" in target:
            raise BadURL(f"MQTT URL {url!r} needs a broker host and one device id", forms=True)
        if parts.username:  # user:password@host is accepted too
            params["user"] = unquote(parts.username)
            params["password"] = unquote(parts.password or "")
    _check_ranges(params, url)
    return DeviceURL(scheme, target, host, port, params, url)


def _check_ranges(p: dict[str, Any], url: str) -> None:
    positive = ("n_in", "n_out", "rate", "oversample", "window", "dac_bits", "adc_bits", "max_batch", "baud", "probes")
    for name in positive:
        if name in p and p[name] < 1:
            raise BadURL(f"{name} must be >= 1 in {url!r}, got {p[name]}")
    for name in ("settle", "chunk", "retries", "substeps", "dac_lo", "dac_hi", "adc_lo", "adc_hi", "rest_code"):
        if p.get(name) is None:
            continue
        if p[name] < 0:
            raise BadURL(f"{name} must be >= 0 in {url!r}, got {p[name]}")
    for name in ("timeout", "heartbeat", "reconnect", "patience", "give_up", "min_rto", "max_rto"):
        if not p[name] >= 0:
            raise BadURL(f"{name} must be >= 0 seconds in {url!r}, got {p[name]}")
    if p["min_rto"] > p["max_rto"]:
        raise BadURL(f"min_rto={p['min_rto']} > max_rto={p['max_rto']} in {url!r}")
    if p["n_out"] > p["n_in"]:
        raise BadURL(f"n_out={p['n_out']} > n_in={p['n_in']} in {url!r}: each output bin averages drive samples")
    if not 0 <= p.get("drop", 0.0) < 1:
        raise BadURL(f"drop must be in [0, 1) in {url!r}, got {p['drop']}")
