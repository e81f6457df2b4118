#!/usr/bin/env python3
"""Issue #14's figures on a real `portico dev --admin` process: RSS and data-plane latency
while the management API is flooded and fed hostile definitions.

  cargo build --release -p portico
  python3 scripts/hostile-admin.py target/release/portico

It starts its own `portico dev` on loopback (ports 19080/19443, data in a temporary
directory), holds 64 slow uploads with a forged signature for the admin's key id and 64
unsigned ones, sends a 16 MB forged upload, then imports (signed, with
`x-amz-content-sha256`, through curl) the costliest YAML and JSON the limits admit, while
timing `GET /dev/pets` on the data plane every 20 ms. It prints the peak RSS of the node
(VmHWM), the slowest data-plane answer, the admin's answers, and stops the node. Only the
standard library and curl are needed.
"""

import hashlib
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

KEY_ID = "AKIAEXAMPLEPORTICO01"
SECRET = "example-secret-change-me-0000000000000000"
ADMIN = ("127.0.0.1", 19443)
HTTP = ("127.0.0.1", 19080)


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def forged_head(length, signed=True):
    now = time.gmtime()
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", now)
    auth = (
        f"authorization: AWS4-HMAC-SHA256 Credential={KEY_ID}/{amz_date[:8]}/us-east-1/"
        f"apigateway/aws4_request, SignedHeaders=host;x-amz-date, Signature={'0' * 64}\r\n"
        if signed
        else ""
    )
    return (
        f"POST /restapis?mode=import HTTP/1.1\r\nhost: {ADMIN[0]}:{ADMIN[1]}\r\n"
        f"x-amz-date: {amz_date}\r\n{auth}content-length: {length}\r\n\r\n"
    ).encode()


def open_tls(cafile):
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = False
    raw = socket.create_connection(ADMIN, timeout=30)
    return context.wrap_socket(raw)


def first_status(conn, wait):
    conn.settimeout(wait)
    try:
        data = conn.recv(4096)
        return int(data.split()[1]) if data else None
    except (socket.timeout, OSError, IndexError, ValueError):
        return None


def signed_import(cafile, path):
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    started = time.monotonic()
    out = subprocess.run(
        ["curl", "-s", "--cacert", cafile, "--aws-sigv4", "aws:amz:us-east-1:apigateway",
         "--user", f"{KEY_ID}:{SECRET}", "-H", f"x-amz-content-sha256: {digest}",
         "--data-binary", f"@{path}", "-o", "/dev/null", "-w", "%{http_code}",
         f"https://{ADMIN[0]}:{ADMIN[1]}/restapis?mode=import"],
        capture_output=True, text=True, check=False)
    return out.stdout, time.monotonic() - started


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/portico"
    work = tempfile.mkdtemp(prefix="portico-hostile-")
    env = dict(os.environ, PORTICO_ADMIN_ACCESS_KEY_ID=KEY_ID,
               PORTICO_ADMIN_SECRET_ACCESS_KEY=SECRET)
    node = subprocess.Popen(
        [binary, "dev", "--admin", f"{ADMIN[0]}:{ADMIN[1]}", "--http", f"{HTTP[0]}:{HTTP[1]}",
         "--https", "127.0.0.1:19444", "--data-dir", os.path.join(work, "data")],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cafile = os.path.join(work, "data", "cert.pem")
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{HTTP[0]}:{HTTP[1]}/dev/pets", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        print(f"RSS at rest: {status_kib(node.pid, 'VmRSS')} KiB")

        held = []
        answers = {}
        for signed in (True, False):
            for _ in range(64):
                conn = open_tls(cafile)
                try:
                    conn.sendall(forged_head(4 << 20, signed) + b"x" * 65536)
                except OSError:
                    pass  # answered and closed before the body was sent
                held.append((signed, conn))
        for signed, conn in held:
            status = first_status(conn, 0.3)
            answers[(signed, status)] = answers.get((signed, status), 0) + 1
        huge = open_tls(cafile)
        try:
            huge.sendall(forged_head(16 << 20))
        except OSError:
            pass
        print(f"flood answers (forged?, status): {answers}; 16 MB upload: {first_status(huge, 2)}")

        yaml_path = os.path.join(work, "hostile.yaml")
        unit = "- " + "{a: " * 30 + "1" + "}" * 30 + "\n"
        with open(yaml_path, "w") as out:
            out.write("openapi: 3.0.1\ninfo:\n  title: hostile\n  version: '1'\npaths: 5\n"
                      "x-filler:\n" + unit * 4250)
        json_path = os.path.join(work, "hostile.json")
        with open(json_path, "w") as out:
            out.write('{"openapi": "3.0.1", "info": {"title": "h", "version": "1"}, "paths": 5, '
                      '"x-filler": [' + "0," * 1_499_000 + "0]}")

        slowest = [0.0]
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                started = time.monotonic()
                try:
                    urllib.request.urlopen(f"http://{HTTP[0]}:{HTTP[1]}/dev/pets", timeout=5)
                except OSError:
                    slowest[0] = max(slowest[0], 99.0)
                slowest[0] = max(slowest[0], time.monotonic() - started)
                time.sleep(0.02)

        poller = threading.Thread(target=poll)
        poller.start()
        for path in (yaml_path, json_path):
            status, took = signed_import(cafile, path)
            print(f"signed import of {os.path.getsize(path)} bytes: {status} in {took:.2f} s")
        stop.set()
        poller.join()
        listed = subprocess.run(
            ["curl", "-s", "--cacert", cafile, "--aws-sigv4", "aws:amz:us-east-1:apigateway",
             "--user", f"{KEY_ID}:{SECRET}", "-o", "/dev/null", "-w", "%{http_code}",
             f"https://{ADMIN[0]}:{ADMIN[1]}/restapis"],
            capture_output=True, text=True, check=False).stdout
        print(f"admin GET /restapis during the flood: {listed}")
        print(f"slowest data-plane answer: {slowest[0] * 1000:.1f} ms")
        print(f"peak RSS (VmHWM): {status_kib(node.pid, 'VmHWM')} KiB; "
              f"now {status_kib(node.pid, 'VmRSS')} KiB")
        for _, conn in held:
            conn.close()
    finally:
        node.terminate()
        node.wait(timeout=30)


if __name__ == "__main__":
    main()
