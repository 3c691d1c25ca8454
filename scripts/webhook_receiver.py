#!/usr/bin/env python3
"""A webhook receiver for trying colloquy's live rules: prints each event POSTed to it, one line each.

Usage: python3 scripts/webhook_receiver.py [PORT]   (default 9000; standard library only)

Then `colloquy serve --demo --live --rule-webhook http://127.0.0.1:9000/hook`. Each line shows the rule, the
key it fired for, and the matched row. A repeat of an event (same X-Colloquy-Event header: the server
retried a delivery it could not confirm) is marked as such.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

seen = set()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        event = self.headers.get("X-Colloquy-Event", "?")
        repeat = " (repeat)" if event in seen else ""
        seen.add(event)
        try:
            e = json.loads(body)
            print(f"{e.get('fired_at')}  {e.get('rule')}  {e.get('key')}{repeat}\n    {json.dumps(e.get('row'))}",
                  flush=True)
        except ValueError:
            print(f"{event}: not JSON: {body[:200]!r}", flush=True)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    print(f"listening on http://127.0.0.1:{port}/hook", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
