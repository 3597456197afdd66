#!/usr/bin/env python3
"""A schedule model of the fused attention backward (variant 3, src/cuda/attention.cu): how long
its persistent blocks take when every key tile adds its dQ to a query tile in a fixed order.

Not a measurement. Each (item, query tile) step costs 1 unit of tile products, then the add of
its dQ, which costs `add` units and may start only once the key tile before it in the order has
added to that query tile (its turn). Items (head, 128-key tile) go to `sms` persistent blocks.
Causal: key tile kv starts at query tile 2 kv (64-row query tiles), as in the kernel.

  ascending   items key tiles 0, 1, ...; turns 0, 1, ...; item i on block i % sms (the kernel
              up to 2026-12-05)
  descending  items key tiles n-1, ..., 0; turns from the last key tile that sees the query tile
              down to 0 (fused_key_tile, fused_turn); item i on block i % sms (the kernel in the
              first session of 2026-12-06)
  dynamic     descending, each block taking the next item from a counter when it finishes one
              (the kernel since the second session of 2026-12-06)

Prints the time of each, and in parentheses the ideal over it: the ideal is all the work spread
evenly over the blocks with no waiting (so it also counts the loss to unequal causal items).

  tools/fused-bwd-schedule.py [--sms 132] [--add 0.05]
"""
import argparse
import heapq


def simulate(bh, t, causal, order, sms, add):
    n_kv, n_q = (t + 127) // 128, (t + 63) // 64
    items = []
    for i in range(bh * n_kv):
        h, r = divmod(i, n_kv)
        kv = r if order == "ascending" else n_kv - 1 - r
        first = 2 * kv if causal else 0
        steps = []
        for qt in range(first, n_q):
            top = min(n_kv - 1, qt // 2) if causal else n_kv - 1
            turn = kv if order == "ascending" else top - kv
            steps.append((h, qt, turn))
        items.append(steps)
    static = order != "dynamic"
    queue = [list(range(b, len(items), sms)) for b in range(sms)] if static else None
    done = {}     # (head, query tile, turn) -> time its add finished
    waiting = {}  # (head, query tile, turn) -> [(block, time it could add)]
    events = [(0.0, b, "take") for b in range(sms)]  # (time, block, what happens)
    cur, pos = [None] * sms, [0] * sms
    nxt, end = 0, 0.0

    def step(b, now, take=False):
        """Runs block b from time now until it waits for a turn, needs a new item (taken in time
        order: an event), or has none left."""
        nonlocal nxt, end
        while True:
            if cur[b] is None or pos[b] == len(items[cur[b]]):
                if not take:
                    heapq.heappush(events, (now, b, "take"))
                    return
                take = False
                if static:
                    cur[b] = queue[b].pop(0) if queue[b] else None
                else:
                    cur[b] = nxt if nxt < len(items) else None
                    nxt += 1
                pos[b] = 0
                if cur[b] is None:
                    end = max(end, now)
                    return
                continue
            h, qt, turn = items[cur[b]][pos[b]]
            ready = now + 1
            if turn > 0 and (h, qt, turn - 1) not in done:
                waiting.setdefault((h, qt, turn - 1), []).append((b, ready))
                return
            if turn > 0:
                ready = max(ready, done[(h, qt, turn - 1)])
            now = ready + add
            done[(h, qt, turn)] = now
            pos[b] += 1
            for wb, wready in waiting.pop((h, qt, turn), []):
                heapq.heappush(events, (max(wready, now), wb, "add"))

    heapq.heapify(events)
    while events:
        now, b, what = heapq.heappop(events)
        if what == "add":  # woken by its turn: its add runs at `now`
            h, qt, turn = items[cur[b]][pos[b]]
            done[(h, qt, turn)] = now + add
            pos[b] += 1
            for wb, wready in waiting.pop((h, qt, turn), []):
                heapq.heappush(events, (max(wready, now + add), wb, "add"))
            now += add
        step(b, now, what == "take")
    if waiting:
        raise RuntimeError("deadlock")
    return end, sum(len(s) for s in items) * (1 + add) / sms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sms", type=int, default=132)
    ap.add_argument("--add", type=float, default=0.05, help="a dQ add's cost, in tile steps")
    a = ap.parse_args()
    orders = ("ascending", "descending", "dynamic")
    print(f"| B*H | T | mask | ideal | {' | '.join(orders)} |  ({a.sms} blocks, add {a.add})")
    print("|---|---|---|---|---|---|---|")
    for bh in (16, 64):
        for t in (1024, 4096, 8192):
            for causal in (False, True):
                res = {o: simulate(bh, t, causal, o, a.sms, a.add) for o in orders}
                ideal = res["dynamic"][1]
                cells = " | ".join(f"{res[o][0]:.0f} ({ideal / res[o][0]:.2f})" for o in res)
                print(f"| {bh} | {t} | {'causal' if causal else 'none'} | {ideal:.0f} | {cells} |")


if __name__ == "__main__":
    main()
