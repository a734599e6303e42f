"""A hostile subscriber, run as its own process by tests/integration/test_curve.py: libzmq SUB
sockets that each subscribe with a topic of SIZE bytes, and report (one JSON line) whether the
publisher cut them off and what they received.

    bigsub.py ENDPOINT COUNT SIZE [SERVER_PUBLIC PUBLIC SECRET]   (keys in Z85: CURVE)

Each socket never reconnects and is never closed: libzmq walks and frees its subscription trie
recursively, one frame per byte, which overflows the stack for a 1 MiB topic (in this process,
not in the publisher, which must refuse the subscription before it reaches its own trie). The
process leaves with os._exit.
"""

import json
import os
import sys
import time

import zmq
from zmq.utils.monitor import recv_monitor_message


def main():
    endpoint, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    keys = sys.argv[4:7]
    ctx = zmq.Context()
    results = []
    keep = []
    for i in range(count):
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.RECONNECT_IVL, -1)
        s.setsockopt(zmq.LINGER, 0)
        if keys:
            s.curve_serverkey, s.curve_publickey, s.curve_secretkey = (k.encode() for k in keys)
        mon = s.get_monitor_socket()
        s.connect(endpoint)
        events = []

        def wait(name, timeout):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                if mon.poll(50, zmq.POLLIN):
                    events.append(zmq.Event(recv_monitor_message(mon)["event"]).name)
                    if name in events:
                        return True
            return False

        wait("HANDSHAKE_SUCCEEDED", 5)
        s.setsockopt(zmq.SUBSCRIBE, bytes([65 + i % 26]) * size)
        cut = wait("DISCONNECTED", 5)
        got = 0
        while s.poll(100, zmq.POLLIN):
            s.recv_multipart()
            got += 1
        results.append({"events": events, "cut": cut, "received": got})
        keep.append((s, mon))
    print(json.dumps(results), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
