"""moto's server, applying one request at a time.

DynamoDB's transactions are serializable. moto's are not under concurrency: its
TransactWriteItems snapshots the tables, writes, and on a failed condition
restores the snapshot, with no lock, on a threaded server. Two racing
transactions can then both pass a condition, or one can undo the other's
writes. Serialising requests gives moto DynamoDB's isolation; the clients still
race, which is what the tests exercise.

It also makes moto's TransactWriteItems copy each table once per request instead
of once per item of the transaction (up to 100 deep copies of the whole table,
stream records included), with the same snapshot and the same rollback: a
delivery written as one 100-item transaction otherwise takes seconds.

It also shows what was posted to a WebSocket connection through moto's
API Gateway Management API, which moto keeps but its API does not return:
GET /_pulse/posts/{connection_id}.

Usage: python moto_serial.py HOST PORT
"""

import copy
import sys
import threading

import moto.dynamodb.models as dynamodb_models

from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


POSTS = "/_pulse/posts/"


class _TableSnapshotsOnce:
    """Stands in for the `copy` module inside one TransactWriteItems: a table is
    deep-copied once (the first copy is the snapshot moto restores on failure);
    every other object as before."""

    def __init__(self):
        self.tables = {}

    def deepcopy(self, obj):
        if not isinstance(obj, dynamodb_models.Table):
            return copy.deepcopy(obj)
        if id(obj) not in self.tables:
            self.tables[id(obj)] = copy.deepcopy(obj)
        return self.tables[id(obj)]


_transact_write_items = dynamodb_models.DynamoDBBackend.transact_write_items


def transact_write_items(self, transact_items):
    # Safe because requests are serialised (see `serialised`).
    dynamodb_models.copy = _TableSnapshotsOnce()
    try:
        return _transact_write_items(self, transact_items)
    finally:
        dynamodb_models.copy = copy


dynamodb_models.DynamoDBBackend.transact_write_items = transact_write_items


def posted(connection_id, start_response):
    data = b""
    for backend in apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID].values():
        if connection_id in backend.connections:
            data += backend.connections[connection_id].data
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [data]


def serialised(environ, start_response):
    with lock:
        path = environ.get("PATH_INFO", "")
        if environ["REQUEST_METHOD"] == "GET" and path.startswith(POSTS):
            return posted(path[len(POSTS):], start_response)
        # Consume the whole response inside the lock: moto does its work lazily.
        return list(app(environ, start_response))


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    run_simple(host, port, serialised, threaded=True, use_reloader=False)
