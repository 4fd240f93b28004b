#!/usr/bin/env python3
"""Generates the inputs of the absence (NOT v) golden cases, deterministically:
shop_orders.jsonl and shop_payments.jsonl (two streams), and
shop_events.jsonl (one stream of orders, payments and shipments).

Each order gets one of: a payment well inside 15 minutes, a payment 1 ms
before the deadline, one exactly at the deadline (too late), a late payment,
no payment, two payments, or a partial payment then a full one. Timestamps are
distinct and rows are written nearly in order (jitter under the 5 s watermark
delay), so Flink and Vigil see the same sequence."""
import json
import random
from datetime import datetime, timedelta

rng = random.Random(20261129)
base = datetime(2026, 3, 1, 9, 0, 0)
MIN15 = 15 * 60 * 1000
orders, payments, shipments = [], [], []
used = set()


def fresh(ms):
    while ms in used:
        ms += 1
    used.add(ms)
    return ms


t = 0
for oid in range(1, 301):
    t += rng.randint(5_000, 60_000)
    ot = fresh(t)
    amount = rng.randint(5, 500)
    orders.append({"order_id": oid, "customer": f"c{rng.randint(1, 40)}", "amount": amount, "ts": ot})
    kind = rng.choice(["paid", "paid", "paid", "edge_in", "edge_out", "late", "none", "twice", "partial"])
    if kind == "paid":
        payments.append({"order_id": oid, "amount": amount, "ts": fresh(ot + rng.randint(1_000, MIN15 - 10_000))})
    elif kind == "edge_in":
        payments.append({"order_id": oid, "amount": amount, "ts": fresh(ot + MIN15 - 1)})
    elif kind == "edge_out":
        if ot + MIN15 in used:
            continue
        payments.append({"order_id": oid, "amount": amount, "ts": fresh(ot + MIN15)})
    elif kind == "late":
        payments.append({"order_id": oid, "amount": amount, "ts": fresh(ot + MIN15 + rng.randint(1, 20 * 60_000))})
    elif kind == "twice":
        p1 = fresh(ot + rng.randint(1_000, 5 * 60_000))
        payments.append({"order_id": oid, "amount": amount, "ts": p1})
        payments.append({"order_id": oid, "amount": amount, "ts": fresh(p1 + rng.randint(1_000, 60_000))})
    elif kind == "partial":
        p1 = fresh(ot + rng.randint(1_000, 5 * 60_000))
        payments.append({"order_id": oid, "amount": amount // 2, "ts": p1})
        payments.append({"order_id": oid, "amount": amount, "ts": fresh(p1 + rng.randint(1_000, 20 * 60_000))})
    if rng.random() < 0.5:
        shipments.append({"order_id": oid, "amount": 0, "ts": fresh(ot + rng.randint(1_000, 30 * 60_000))})


def fmt(ms):
    return (base + timedelta(milliseconds=ms)).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def write(path, rows):
    # Nearly in order: sorted by a key jittered by under 5 s.
    rows = sorted(rows, key=lambda r: r["ts"] + rng.randint(0, 4_000))
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps({**r, "ts": fmt(r["ts"])}) + "\n")


write("shop_orders.jsonl", orders)
write("shop_payments.jsonl", payments)
events = [{"kind": "order", **r} for r in orders]
events += [{"kind": "payment", "customer": None, **r} for r in payments]
events += [{"kind": "shipment", "customer": None, **r} for r in shipments]
for e in events:
    e.setdefault("customer", None)
write("shop_events.jsonl", [{k: e[k] for k in ("kind", "order_id", "customer", "amount", "ts")} for e in events])
