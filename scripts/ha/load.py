#!/usr/bin/env python3
"""The chaos harness's load: session opens and turn appends over mutual TLS
through HAProxy, several tenants, each request on its tenant's hostname (SNI).

Every request is sent once and never retried, so an acknowledged turn that
later appears twice was duplicated by the system, not by the client. Writes
one JSON line per request to --log: start time, tenant, kind, ok, status; and
the acknowledged turns (session id, text) to --acked.

  load.py --proxy 127.0.0.1:18443 --domain clinics.test --certs DIR \
          --tenants a,b,c --workers 3 --seconds 60 --log L --acked A --stop FILE
"""
import argparse, http.client, json, os, random, socket, ssl, threading, time

p = argparse.ArgumentParser()
p.add_argument("--proxy", required=True)
p.add_argument("--domain", required=True)
p.add_argument("--certs", required=True, help="DIR/<tenant>/{ca.crt,client.crt,client.key}")
p.add_argument("--tenants", required=True)
p.add_argument("--workers", type=int, default=2, help="per tenant")
p.add_argument("--turns", type=int, default=8, help="per session (the context shows the last 20)")
p.add_argument("--stop", required=True, help="the load stops when this file exists")
p.add_argument("--log", required=True)
p.add_argument("--acked", required=True)
a = p.parse_args()
host, port = a.proxy.rsplit(":", 1)
lock = threading.Lock()
log = open(a.log, "a", buffering=1)
acked = open(a.acked, "a", buffering=1)


def context(tenant):
    d = os.path.join(a.certs, tenant)
    c = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
    c.load_cert_chain(os.path.join(d, "client.crt"), os.path.join(d, "client.key"))
    return c


class Conn:
    def __init__(self, tenant):
        self.tenant, self.ctx, self.c = tenant, context(tenant), None

    def request(self, method, path, body):
        """One attempt: a failure is not acknowledged, and nothing is retried."""
        if self.c is None:
            # SNI (and the certificate check) by the tenant's hostname; the TCP peer is HAProxy.
            self.c = http.client.HTTPSConnection(f"{self.tenant}.{a.domain}", int(port), context=self.ctx, timeout=3)
            self.c._create_connection = lambda addr, *args, **kw: socket.create_connection((host, int(port)), *args, **kw)
        try:
            self.c.request(method, path, body=json.dumps(body) if body is not None else None,
                           headers={"content-type": "application/json"})
            r = self.c.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException) as e:
            self.c.close()
            self.c = None
            return 0, str(e).encode()


def note(tenant, kind, start, status):
    log.write(json.dumps({"t": start, "tenant": tenant, "kind": kind, "ok": 200 <= status < 300, "status": status}) + "\n")


def worker(tenant, w):
    conn = Conn(tenant)
    n = 0
    while not os.path.exists(a.stop):
        phone = "+1 415 %03d %04d" % (random.randint(200, 999), random.randint(0, 9999))
        start = time.time()
        status, data = conn.request("POST", "/v1/sessions",
                                    {"identifiers": {"phone": phone}, "evidence": {"caller_id_attestation": "A"}})
        note(tenant, "open", start, status)
        if not 200 <= status < 300:
            time.sleep(0.05)
            continue
        sid = json.loads(data)["session_id"]
        for _ in range(a.turns):
            if os.path.exists(a.stop):
                break
            n += 1
            text = f"turn {tenant} {w} {n}"
            start = time.time()
            status, _ = conn.request("POST", f"/v1/sessions/{sid}/turns", {"speaker": "agent", "text": text})
            note(tenant, "turn", start, status)
            if 200 <= status < 300:
                acked.write(json.dumps({"tenant": tenant, "session": sid, "text": text}) + "\n")
            else:
                time.sleep(0.05)


threads = [threading.Thread(target=worker, args=(t, w), daemon=True)
           for t in a.tenants.split(",") for w in range(a.workers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
