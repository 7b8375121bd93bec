#!/usr/bin/env python3
"""The relay under a flood of wrong passwords: N simultaneous AUTH PLAIN attempts from A
loopback addresses, while a program on this machine hands in one message. Prints the peak
resident memory of the relay (VmHWM), how long the flood took to be refused, and how long the
loopback message took to be accepted.

    cargo build --release && python3 bench/auth-flood/run.py [N] [A]

Uses target/release/m365-mailer; nothing is delivered (the account points at no server, so the
message is only queued). Linux only (/proc, 127.0.0.0/8 source addresses)."""

import base64
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(ROOT, "target", "release", "m365-mailer")
N = int(sys.argv[1]) if len(sys.argv) > 1 else 300
ADDRESSES = int(sys.argv[2]) if len(sys.argv) > 2 else 30


def replies(sock, count):
    """Reads `count` complete replies."""
    data = b""
    while data.count(b"\r\n") < 1 or sum(1 for l in data.split(b"\r\n") if len(l) > 3 and l[3:4] == b" ") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def main():
    work = tempfile.mkdtemp(prefix="auth-flood-")
    password_hash = subprocess.run(
        [BINARY, "relay", "hash-password"], input=b"the right password\n", capture_output=True, check=True
    ).stdout.decode().strip()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = os.path.join(work, "config.toml")
    with open(config, "w") as f:
        f.write(f"""[accounts.main]
tenant = "contoso.onmicrosoft.com"
client_id = "0b7e2f4c-5d6a-4e8b-9c1d-3f2a4b6c8d0e"
client_secret = "~unused"
mailbox = "relay@contoso.com"
smtp_host = "127.0.0.1"
smtp_port = 9

[relay]
auth_failure_delay = "100ms"

[[relay.listen]]
address = "127.0.0.1:{port}"

[[relay.users]]
name = "device"
password_hash = "{password_hash}"
""")
    relay = subprocess.Popen(
        [BINARY, "relay", "--config", config, "--queue-dir", os.path.join(work, "queue"), "--admin", "off"],
        stderr=subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", ""), "HOME": work},
    )
    for line in relay.stderr:
        if line.startswith(b"m365-mailer relay: ready"):
            break
    threading.Thread(target=lambda: [None for _ in relay.stderr], daemon=True).start()
    wrong = base64.b64encode(b"\0device\0not the password")
    refused = []

    def attack(i):
        s = socket.socket()
        s.bind((f"127.0.0.{2 + i % ADDRESSES}", 0))
        s.connect(("127.0.0.1", port))
        replies(s, 1)
        s.sendall(b"EHLO attacker\r\nAUTH PLAIN " + wrong + b"\r\n")
        answer = replies(s, 2)
        refused.append(b"535 " in answer)
        s.close()

    start = time.monotonic()
    threads = [threading.Thread(target=attack, args=(i,)) for i in range(N)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    s = socket.create_connection(("127.0.0.1", port))
    replies(s, 1)
    before = time.monotonic()
    s.sendall(b"EHLO cron\r\nMAIL FROM:<relay@contoso.com>\r\nRCPT TO:<bob@fabrikam.com>\r\nDATA\r\n")
    replies(s, 4)
    s.sendall(b"Subject: during the flood\r\n\r\nok\r\n.\r\n")
    accepted = replies(s, 1)
    accept_ms = (time.monotonic() - before) * 1000
    s.close()
    for t in threads:
        t.join()
    flood_s = time.monotonic() - start
    with open(f"/proc/{relay.pid}/status") as f:
        peak = next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
    relay.terminate()
    relay.wait()
    assert accepted.startswith(b"250 "), accepted
    print(f"{N} wrong AUTH from {ADDRESSES} addresses: {sum(refused)} refused in {flood_s:.2f} s; "
          f"a loopback message accepted in {accept_ms:.1f} ms; relay peak RSS {peak:.1f} MiB")


if __name__ == "__main__":
    main()
