"""A fault-injecting TCP proxy for link-fault tests (no tc/netem here).

Sits between a client and a server on loopback and can, at any moment:
  delay(ms)        hold every chunk this long before forwarding it
  throttle(bps)    forward at most this many bytes per second per direction
  cut()            close every connection now (and refuse new ones until heal())
  blackhole(direction="both")
                   keep connections open but forward nothing (data is dropped); direction
                   "up" drops only client-to-server data, "down" only server-to-client
  blackhole_on(trigger, direction="down", drop_trigger=False)
                   arm a black hole that starts when client-to-server data contains the bytes
                   `trigger` (once): the chunk holding them is still forwarded unless
                   drop_trigger; .triggered (a threading.Event) is set then. E.g. swallow the
                   answer to a COMMIT: blackhole_on(b"COMMIT", "down").
  heal()           back to a clean link

    with FaultProxy(("127.0.0.1", server_port)) as fp:
        client connects to fp.port ...
        fp.blackhole(); time.sleep(3); fp.heal()

Runs its own asyncio loop in a thread; every method is thread-safe. Bounded: buffers are
limited per connection (the reader pauses), and the proxy stops when the test ends.
"""

import asyncio
import socket
import threading
import time


class FaultProxy:
    def __init__(self, upstream, host="127.0.0.1", port=0, chunk=65536):
        self.upstream = upstream
        self.host = host
        self.chunk = chunk
        self._delay = 0.0
        self._bps = 0
        self._mode = "ok"  # ok | cut | blackhole
        self._drop = {"up", "down"}  # directions a black hole drops
        self._arm = None  # (trigger, direction, drop_trigger) waiting to start a black hole
        self.triggered = threading.Event()
        self._conns = set()
        self.bytes_forwarded = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server = None
        self._port = port
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")

    @property
    def port(self):
        return self._port

    # ---- control (any thread) ----
    def delay(self, ms):
        self._delay = ms / 1000.0

    def throttle(self, bytes_per_s):
        self._bps = int(bytes_per_s)

    def blackhole(self, direction="both"):
        assert direction in ("both", "up", "down")
        self._drop = {"up", "down"} if direction == "both" else {direction}
        self._mode = "blackhole"

    def blackhole_on(self, trigger, direction="down", drop_trigger=False):
        assert direction in ("both", "up", "down")
        self.triggered.clear()
        self._arm = (bytes(trigger), direction, drop_trigger)

    def cut(self):
        self._mode = "cut"
        self._loop.call_soon_threadsafe(self._close_all)

    def heal(self):
        self._delay, self._bps, self._mode, self._arm = 0.0, 0, "ok", None

    def close(self):
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._shutdown)
        self._thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- the loop ----
    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()
        pending = asyncio.all_tasks(self._loop)
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _start(self):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        self._port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._handle, sock=sock)

    def _close_all(self):
        for w in list(self._conns):
            try:
                w.transport.abort()
            except Exception:
                pass
        self._conns.clear()

    def _shutdown(self):
        self._close_all()
        if self._server:
            self._server.close()
        for task in asyncio.all_tasks(self._loop):
            task.cancel()
        self._loop.call_soon(self._loop.stop)

    async def _handle(self, reader, writer):
        if self._mode == "cut":
            writer.transport.abort()
            return
        try:
            ur, uw = await asyncio.wait_for(asyncio.open_connection(*self.upstream), 5)
        except Exception:
            writer.transport.abort()
            return
        self.connections += 1
        self._conns.update((writer, uw))
        await asyncio.gather(self._pipe(reader, uw, "up"), self._pipe(ur, writer, "down"),
                             return_exceptions=True)
        for w in (writer, uw):
            self._conns.discard(w)
            try:
                w.transport.abort()
            except Exception:
                pass

    def _check_trigger(self, tail, data):
        """True when the armed trigger is in tail+data and the chunk must be dropped."""
        trigger, direction, drop_trigger = self._arm
        if trigger not in tail + data:
            return False
        self._arm = None
        self.blackhole(direction)
        self.triggered.set()
        return drop_trigger

    async def _pipe(self, reader, writer, direction):
        tail = b""  # the end of the previous chunk, for a trigger split across two
        while True:
            data = await reader.read(self.chunk)
            if not data or self._mode == "cut":
                break
            if direction == "up" and self._arm and self._mode == "ok":
                drop = self._check_trigger(tail, data)
                tail = data[-64:]
                if drop:
                    continue
            elif self._mode == "blackhole" and direction in self._drop:
                continue
            if self._delay:
                await asyncio.sleep(self._delay)
            if self._bps:
                await asyncio.sleep(len(data) / self._bps)
            writer.write(data)
            self.bytes_forwarded += len(data)
            await writer.drain()
        writer.transport.abort()


def _selftest():
    """A tiny check of the proxy against an echo server."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def echo():
        c, _ = srv.accept()
        while True:
            d = c.recv(100)
            if not d:
                break
            c.sendall(d)

    threading.Thread(target=echo, daemon=True).start()
    with FaultProxy(srv.getsockname()) as fp:
        s = socket.create_connection(("127.0.0.1", fp.port), timeout=5)
        s.sendall(b"hello")
        assert s.recv(100) == b"hello"
        fp.delay(200)
        t = time.monotonic()
        s.sendall(b"x")
        assert s.recv(100) == b"x" and time.monotonic() - t >= 0.35
        fp.cut()
        s.settimeout(2)
        assert s.recv(100) == b""
    print("faultproxy ok")


if __name__ == "__main__":
    _selftest()
