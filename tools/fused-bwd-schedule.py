#!/usr/bin/env python3
"""A schedule model of the fused attention backward (variant 3, src/cuda/attention.cu): how long
its persistent blocks take when every key tile adds its dQ to a query tile in a fixed order.

Not a measurement. Each (item, query tile) step costs 1 unit of tile products, then the add of
its dQ, which costs `add` units and may start only once the key tile before it in the order has
added to that query tile (its turn). Items (head, 128-key tile) go to `sms` persistent blocks,
item i to block i % sms, each block taking its items in order. Causal: key tile kv starts at
query tile 2 kv (64-row query tiles), as in the kernel.

  ascending   items key tiles 0, 1, ...; turns 0, 1, ... (the kernel up to 2026-12-05)
  descending  items key tiles n-1, ..., 0; turns from the last key tile that sees the query tile
              down to 0 (fused_key_tile, fused_turn)

Prints the time of each, and in parentheses the ideal over it: the ideal is all the work spread
evenly over the blocks with no waiting (so it also counts the loss to unequal causal items).

  tools/fused-bwd-schedule.py [--sms 132] [--add 0.05]
"""
import argparse


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
    done = {}  # (head, query tile, turn) -> time its add finished
    clock = [0.0] * sms
    queue = [list(range(b, len(items), sms)) for b in range(sms)]
    pos = [0] * sms  # step within the block's current item
    work = sum(len(s) for s in items) * (1 + add) / sms
    left = sum(len(s) for s in items)
    while left:
        moved = False
        for b in range(sms):
            while queue[b]:
                steps = items[queue[b][0]]
                if pos[b] == len(steps):
                    queue[b].pop(0)
                    pos[b] = 0
                    continue
                h, qt, turn = steps[pos[b]]
                ready = clock[b] + 1
                if turn > 0:
                    prev = done.get((h, qt, turn - 1))
                    if prev is None:
                        break  # its turn has not come: another block first
                    ready = max(ready, prev)
                clock[b] = ready + add
                done[(h, qt, turn)] = clock[b]
                pos[b] += 1
                left -= 1
                moved = True
        if not moved:
            raise RuntimeError("deadlock")
    return max(clock), work


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sms", type=int, default=132)
    ap.add_argument("--add", type=float, default=0.05, help="a dQ add's cost, in tile steps")
    a = ap.parse_args()
    print(f"| B*H | T | mask | ideal | ascending | descending |  ({a.sms} blocks, add {a.add})")
    print("|---|---|---|---|---|---|")
    for bh in (16, 64):
        for t in (1024, 4096, 8192):
            for causal in (False, True):
                res = {o: simulate(bh, t, causal, o, a.sms, a.add) for o in ("ascending", "descending")}
                ideal = res["descending"][1]
                cells = " | ".join(f"{res[o][0]:.0f} ({ideal / res[o][0]:.2f})" for o in res)
                print(f"| {bh} | {t} | {'causal' if causal else 'none'} | {ideal:.0f} | {cells} |")


if __name__ == "__main__":
    main()
