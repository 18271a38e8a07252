"""A small real web app: what the demo and the tests run as the application container.

It never mentions a tracer: whatever instruments it comes from the environment (the injected
PYTHONPATH). `/facts` reports what the process actually loaded, so tests can tell whose copy
of a package won and whether a tracer is running.
"""

import os
import sys

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def index():  # type: ignore[no-untyped-def]
    return "hello from the app\n"


@app.route("/facts")
def facts():  # type: ignore[no-untyped-def]
    def origin(name):  # type: ignore[no-untyped-def]
        module = sys.modules.get(name)
        return getattr(module, "__file__", None)

    return jsonify(
        python=sys.version.split()[0],
        ddtrace=origin("ddtrace"),
        wrapt=origin("wrapt"),
        wrapt_version=getattr(sys.modules.get("wrapt"), "__version__", None),
        otel_sdk=origin("opentelemetry.sdk.trace"),
        sys_path=[entry for entry in sys.path if isinstance(entry, str)],
        entity_id=os.environ.get("DD_ENTITY_ID"),
    )


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
