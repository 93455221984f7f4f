"""Flask upstream for the differential tests, run under gunicorn:

    PYTHONPATH=tests/upstreams:.tools/python \
        python3 -m gunicorn --bind 127.0.0.1:$PORT --workers 1 --threads 4 flask_app:app

(--no-control-socket is worth adding: gunicorn 27 otherwise opens a
control socket at one fixed path, ~/.gunicorn/gunicorn.ctl, which servers
started side by side take over from one another.)

Every method on every path gets a 200 JSON answer naming the handler that
Flask's own routing picked: "protected" for /admin and what is under it,
"public" for anything else. The routes are declared the ordinary way and
Flask/Werkzeug keep their defaults (strict_slashes, merge_slashes), so a
path reads here as it would in a real Flask app; where Werkzeug answers a
redirect instead (308 for a missing slash or merged slashes), that
redirect goes out as it is.
"""

from flask import Flask, jsonify, request
from werkzeug.routing import Rule

FRAMEWORK = "flask"


class AnyMethodRule(Rule):
    """A rule that matches every method, WebDAV's and made-up ones too.

    Flask itself only lets a route list methods, and one not listed gets
    405 before routing is done; Werkzeug's matcher takes methods=None as
    "any". Only the method check changes: paths match as usual.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.methods = None


app = Flask(__name__)
app.url_rule_class = AnyMethodRule


def answer(handler, status=200):
    headers = request.headers
    body = {
        "handler": handler,
        "framework": FRAMEWORK,
        "path": request.path,
        # gunicorn keeps the request-target as it came off the wire.
        "raw": request.environ.get("RAW_URI"),
        "x_user_id": headers.get("X-User-Id"),
        "x_client_id": headers.get("X-Client-Id"),
        "x_forwarded_for": headers.get("X-Forwarded-For"),
        "x_forwarded_proto": headers.get("X-Forwarded-Proto"),
        "x_forwarded_host": headers.get("X-Forwarded-Host"),
        "forwarded": headers.get("Forwarded"),
        "x_request_id": headers.get("X-Request-Id"),
        "host": headers.get("Host"),
    }
    return jsonify(body), status


# OPTIONS is listed so that Flask answers it through the view rather than
# with its automatic Allow response; AnyMethodRule then drops the list.
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


# "/admin/" is declared as well: with strict_slashes (the default) neither
# "/admin" nor "/admin/<path:rest>" would match it, as the path converter
# needs at least one character.
@app.route("/admin", methods=METHODS)
@app.route("/admin/", methods=METHODS)
@app.route("/admin/<path:rest>", methods=METHODS)
def protected(rest=None):
    return answer("protected")


@app.route("/", methods=METHODS)
@app.route("/<path:rest>", methods=METHODS)
def public(rest=None):
    return answer("public")


# Whatever falls through routing is still "not the protected handler".
@app.errorhandler(404)
@app.errorhandler(405)
def not_routed(_error):
    return answer("public")
