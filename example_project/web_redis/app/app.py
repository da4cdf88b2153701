"""A hit counter: GET / adds one to `hits` in Redis and answers `hits: N`; GET /health answers
`ok` while Redis answers. Redis is reached by the name in REDIS_HOST (an alias on a network)."""

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

store = redis.Redis(
    host=os.environ.get("REDIS_HOST", "redis"), port=6379, socket_connect_timeout=1, socket_timeout=1
)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            if self.path == "/health":
                store.ping()
                body = "ok\n"
            elif self.path == "/":
                body = f"hits: {store.incr('hits')}\n"
            else:
                self.send_error(404)
                return
            status = 200
        except redis.RedisError as error:
            # The client reconnects at the next request: the app recovers when Redis is back.
            status, body = 503, f"redis unavailable: {error}\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body.encode())


print("listening on 8000", flush=True)
ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
