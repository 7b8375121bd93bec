"""Signs an administrator in with the device authorization grant through Microsoft's MSAL for
Python, unmodified, as a public client (Microsoft Graph Command Line Tools): prints the flow
MSAL started as one JSON line, waits while MSAL polls (the test approves the code meanwhile),
then prints what MSAL returned as JSON."""
import json
import sys

import msal

args = json.load(sys.stdin)
app = msal.PublicClientApplication(
    args["client_id"], authority=args["authority"], verify=args["ca_file"],
    instance_discovery=args["base_url"] + "/common/discovery/instance")
flow = app.initiate_device_flow(scopes=args["scopes"])
print(json.dumps({k: flow.get(k) for k in ("user_code", "verification_uri", "interval", "message", "error")}),
      flush=True)
result = app.acquire_token_by_device_flow(flow)
print(json.dumps({"ok": "access_token" in result, "access_token": result.get("access_token"),
                  "scope": result.get("scope"), "error": result.get("error"),
                  "error_description": result.get("error_description")}), flush=True)
