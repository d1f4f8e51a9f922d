"""A tiny HTTPS application for the tests: answers every GET with its request line and headers.

Usage: python3 https_upstream.py PORT CERT KEY
"""
import http.server
import ssl
import sys


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        lines = ["%s %s %s" % (self.command, self.path, self.request_version)]
        lines += ["%s: %s" % (name.lower(), value) for name, value in self.headers.items()]
        body = ("\n".join(lines) + "\nover: tls\n").encode("utf-8")
        self.send_response(200)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Echo)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
