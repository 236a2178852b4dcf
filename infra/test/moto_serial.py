"""moto's server, applying one request at a time.

DynamoDB's transactions are serializable. moto's are not under concurrency: its
TransactWriteItems snapshots the tables, writes, and on a failed condition
restores the snapshot, with no lock, on a threaded server. Two racing
transactions can then both pass a condition, or one can undo the other's
writes. Serialising requests gives moto DynamoDB's isolation; the clients still
race, which is what the tests exercise.

Usage: python moto_serial.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def serialised(environ, start_response):
    with lock:
        # Consume the whole response inside the lock: moto does its work lazily.
        return list(app(environ, start_response))


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, serialised, threaded=True, use_reloader=False)
