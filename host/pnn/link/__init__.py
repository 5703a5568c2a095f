"""One board, one link, no trainer: URLs, capabilities and codes, errors, the wire codec, transports
(serial, MQTT, in-process sim), the asyncio client, the synchronous client and the background loop.

Modules:
    url        parse and check `sim://`, `serial://`, `mqtt://` addresses (DeviceURL)
    codes      HELLO capabilities and floats <-> integer codes (Capabilities, Calibration)
    errors     what can go wrong, typed by what the caller should do
    wire       the host's fast msgpack payload codec
    transport  the Transport interface; serial, mqtt, sim implement it
    client     the asyncio client (AsyncDevice, make_device): ids, window, HELLO, heartbeat, reconnect, outages
    _requests  its table of requests in flight: sends, timers, (fast) re-sends, routing replies
    timing     how long to wait: RFC 6298's retransmission timer plus the board's own work time
    direct     one RUN on a synchronous caller's own thread, on the serial port the loop lends it
    sync       the one synchronous client (StreamLink, MqttLink, SyncClient, open_serial) for tools and tests
    loop       one background asyncio loop shared by synchronous callers
"""
