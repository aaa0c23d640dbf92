#!/usr/bin/env python3
"""After the chaos: every acknowledged turn read back once through HAProxy
(each session's context), and the failover times from the load's log.

  check.py --proxy HOST:PORT --domain D --certs DIR --acked A --log L --faults F
prints JSON: acknowledged, lost, duplicated, failovers [{fault, seconds}]
"""
import argparse, collections, http.client, json, os, socket, ssl, time

p = argparse.ArgumentParser()
for k in ("proxy", "domain", "certs", "acked", "log", "faults"):
    p.add_argument("--" + k, required=True)
a = p.parse_args()
host, port = a.proxy.rsplit(":", 1)

acked = collections.defaultdict(list)
for line in open(a.acked):
    r = json.loads(line)
    acked[(r["tenant"], r["session"])].append(r["text"])

conns = {}
def get(tenant, path):
    if tenant not in conns:
        d = os.path.join(a.certs, tenant)
        c = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
        c.load_cert_chain(os.path.join(d, "client.crt"), os.path.join(d, "client.key"))
        h = http.client.HTTPSConnection(f"{tenant}.{a.domain}", int(port), context=c, timeout=10)
        h._create_connection = lambda addr, *args, **kw: socket.create_connection((host, int(port)), *args, **kw)
        conns[tenant] = h
    for _ in range(50):
        try:
            conns[tenant].request("GET", path)
            r = conns[tenant].getresponse()
            body = r.read()
            if r.status == 200:
                return json.loads(body)
        except (OSError, http.client.HTTPException):
            conns[tenant].close()
        time.sleep(0.2)
    raise SystemExit(f"could not read {path} of {tenant}")

total = lost = dup = 0
for (tenant, sid), texts in acked.items():
    ctx = get(tenant, f"/v1/sessions/{sid}/context")
    seen = collections.Counter(t["text"] for t in ctx.get("recent_turns", []))
    for text in texts:
        total += 1
        if seen[text] == 0:
            lost += 1
        elif seen[text] > 1:
            dup += 1

reqs = [json.loads(l) for l in open(a.log)]
failovers = []
for line in open(a.faults):
    f = json.loads(line)
    # The first request started after the fault that succeeded, per affected tenant; the slowest counts.
    worst = 0.0
    for tenant in f["tenants"]:
        ts = [r["t"] for r in reqs if r["t"] >= f["t"] and r["ok"] and r["tenant"] == tenant]
        if ts:
            worst = max(worst, min(ts) - f["t"])
        else:
            worst = float("inf")
    failovers.append({"fault": f["fault"], "tenants": f["tenants"], "seconds": round(worst, 2)})
print(json.dumps({"acknowledged": total, "lost": lost, "duplicated": dup, "failovers": failovers}))
