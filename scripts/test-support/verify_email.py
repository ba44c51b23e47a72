"""Independent checks of an email Beckon built, for the Swift tests (run with the test venv's python).

    python verify_email.py MESSAGE_FILE '{"sel._domainkey.example.com": "v=DKIM1; k=rsa; p=..."}'

Verifies every DKIM-Signature with dkimpy against the given TXT records (a stub resolver: no
network), parses the MIME with Python's email package, and prints JSON: {"dkim": [bool, ...],
"subject", "from", "to", "headers": {name: value}, "parts": [{"type", "text"}]}.
"""
import json
import sys
from email import message_from_bytes, policy

import dkim


def main() -> None:
    raw = open(sys.argv[1], "rb").read()
    records = json.loads(sys.argv[2])

    def dnsfunc(name, timeout=5):
        text = name.decode() if isinstance(name, bytes) else name
        return records.get(text.rstrip("."), "").encode()

    signatures = raw.split(b"\r\n\r\n", 1)[0].lower().count(b"\ndkim-signature:") + (1 if raw.lower().startswith(b"dkim-signature:") else 0)
    checker = dkim.DKIM(raw)
    results = [bool(checker.verify(idx=index, dnsfunc=dnsfunc)) for index in range(signatures)]
    message = message_from_bytes(raw, policy=policy.default)
    parts = []
    for part in message.walk():
        if part.is_multipart():
            continue
        parts.append({"type": part.get_content_type(), "text": part.get_content()})
    print(json.dumps({
        "dkim": results,
        "subject": str(message["subject"]),
        "from": str(message["from"]),
        "to": str(message["to"]),
        "headers": {name: str(value) for name, value in message.items() if name.lower() != "dkim-signature"},
        "parts": parts,
    }, ensure_ascii=False))


main()
