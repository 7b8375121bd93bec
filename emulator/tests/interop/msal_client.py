"""Acquires app-only tokens from the emulator with Microsoft's MSAL for Python, unmodified:
a client secret (authority validated through the emulator's instance discovery), a certificate
as PEM key + SHA-1 thumbprint (MSAL signs RS256 with x5t), a certificate as a PFX file (MSAL
signs PS256 with x5t#S256), and a wrong secret. Prints what MSAL returned as JSON."""
import json
import sys

import msal
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

args = json.load(sys.stdin)
scopes = [args["scope"]]
common = dict(authority=args["authority"], verify=args["ca_file"])


def outcome(result):
    if "access_token" in result:
        return {"ok": True, "access_token": result["access_token"], "token_type": result.get("token_type")}
    return {"ok": False, "error": result.get("error"), "error_codes": result.get("error_codes"),
            "error_description": result.get("error_description")}


out = {}
app = msal.ConfidentialClientApplication(
    args["client_id"], client_credential=args["secret"],
    instance_discovery=args["base_url"] + "/common/discovery/instance", **common)
out["secret"] = outcome(app.acquire_token_for_client(scopes=scopes))
out["secret_cached"] = outcome(app.acquire_token_for_client(scopes=scopes))

key_pem = open(args["key_file"], "rb").read()
cert_pem = open(args["cert_file"], "rb").read()
cert = x509.load_pem_x509_certificate(cert_pem)
thumbprint = cert.fingerprint(hashes.SHA1()).hex()
app = msal.ConfidentialClientApplication(
    args["client_id"], validate_authority=False,
    client_credential={"private_key": key_pem.decode(), "thumbprint": thumbprint}, **common)
out["pem_thumbprint"] = outcome(app.acquire_token_for_client(scopes=scopes))

key = serialization.load_pem_private_key(key_pem, password=None)
pfx = pkcs12.serialize_key_and_certificates(
    b"mailer", key, cert, None, serialization.BestAvailableEncryption(b"pfx-password"))
with open(args["pfx_file"], "wb") as f:
    f.write(pfx)
app = msal.ConfidentialClientApplication(
    args["client_id"], validate_authority=False,
    client_credential={"private_key_pfx_path": args["pfx_file"], "passphrase": b"pfx-password"}, **common)
out["pfx"] = outcome(app.acquire_token_for_client(scopes=scopes))

app = msal.ConfidentialClientApplication(
    args["client_id"], client_credential="not-the-secret", validate_authority=False, **common)
out["wrong_secret"] = outcome(app.acquire_token_for_client(scopes=scopes))
json.dump(out, sys.stdout)
