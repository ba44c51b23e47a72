"""A real SMTP server for the Swift tests (aiosmtpd): STARTTLS required, AUTH (PLAIN, LOGIN) only
after TLS, and per-recipient answers by address prefix — "bounce…" 550, "later…" 451 once, then
accepted. Every accepted message is appended to OUTPUT as a JSON line {"from", "to", "data"
(base64), "tls", "auth"}.

    python smtp_sink.py CERT KEY OUTPUT USER PASSWORD    # prints "port N" when listening
"""
import base64
import json
import socket
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

cert, key, output, user, password = sys.argv[1:6]
deferred = set()


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if address.startswith("later") and address not in deferred:
            deferred.add(address)
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with open(output, "a") as out:
            out.write(json.dumps({
                "from": envelope.mail_from, "to": envelope.rcpt_tos,
                "data": base64.b64encode(envelope.original_content).decode(),
                "tls": session.ssl is not None, "auth": bool(session.authenticated),
            }) + "\n")
        return "250 2.0.0 queued"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
    return AuthResult(success=ok, handled=False)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
controller = Controller(
    Handler(), hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
    authenticator=authenticator, auth_required=True, auth_require_tls=True)
controller.start()
print("port %d" % port, flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    controller.stop()
