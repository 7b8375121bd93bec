"""Sends one message to the emulator with Python's smtplib: STARTTLS, AUTH XOAUTH2 through
smtplib's own SASL code (with or without initial response), then either smtplib's sendmail or a
hand-pipelined MAIL/RCPT/DATA flight. Prints the replies as JSON."""
import json
import smtplib
import ssl
import sys

args = json.load(sys.stdin)
ctx = ssl.create_default_context(cafile=args["ca_file"])
host, port = args["smtp"].rsplit(":", 1)
xoauth2 = "user=%s\x01auth=Bearer %s\x01\x01" % (args["mailbox"], args["token"])
message = open(args["message_file"], "rb").read()
result = {}

with smtplib.SMTP(host, int(port), timeout=20) as s:
    s.ehlo("python.example")
    result["starttls_offered"] = s.has_extn("starttls")
    s.starttls(context=ctx)
    s.ehlo("python.example")
    result["auth_offered"] = s.esmtp_features.get("auth", "")
    result["pipelining_offered"] = s.has_extn("pipelining")
    code, text = s.auth("XOAUTH2", lambda challenge=None: xoauth2,
                        initial_response_ok=args["initial_response"])
    result["auth"] = [code, text.decode()]
    if args["pipelining"]:
        s.send(("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (args["mailbox"], args["to"])).encode())
        result["flight"] = [list(map(lambda r: r if isinstance(r, int) else r.decode(), s.getreply()))
                            for _ in range(3)]
        stuffed = message.replace(b"\r\n.", b"\r\n..")
        if stuffed.startswith(b"."):
            stuffed = b"." + stuffed
        s.send(stuffed + b".\r\n")
        code, text = s.getreply()
        result["data"] = [code, text.decode()]
    else:
        refused = s.sendmail(args["mailbox"], [args["to"]], message)
        result["refused"] = refused
json.dump(result, sys.stdout)
