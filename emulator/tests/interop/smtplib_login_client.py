"""Sends one message to the emulator's Azure Communication Services endpoint with Python's
smtplib: STARTTLS, then smtplib's own login() (AUTH LOGIN, since the server offers LOGIN and
XOAUTH2) first with a wrong password, then with the SMTP username and the client secret, then
sendmail. Prints the replies as JSON."""
import json
import smtplib
import ssl
import sys

args = json.load(sys.stdin)
ctx = ssl.create_default_context(cafile=args["ca_file"])
host, port = args["smtp"].rsplit(":", 1)
message = open(args["message_file"], "rb").read()
result = {}

with smtplib.SMTP(host, int(port), timeout=20) as s:
    s.ehlo("python.example")
    result["starttls_offered"] = s.has_extn("starttls")
    s.starttls(context=ctx)
    s.ehlo("python.example")
    result["auth_offered"] = s.esmtp_features.get("auth", "")
    try:
        s.login(args["username"], "wrong-" + args["password"])
        result["wrong"] = None
    except smtplib.SMTPAuthenticationError as e:
        result["wrong"] = [e.smtp_code, e.smtp_error.decode()]
    code, text = s.login(args["username"], args["password"])
    result["login"] = [code, text.decode()]
    result["refused"] = s.sendmail(args["sender"], [args["to"]], message)
json.dump(result, sys.stdout)
