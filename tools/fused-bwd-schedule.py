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
              (the kernel in the second session of 2026-12-06, before the writer warps)
  writer      dynamic, but each block's consumers hand the dQ of a step to a writer, which waits
              for the turn and adds while the consumers go on (one buffer: the consumers wait
              only while the writer still holds the last one); a block takes its next item
              once its consumers have handed the last step (the kernel since then)

Prints the time of each, and in parentheses the ideal over it: the ideal is all the work spread
evenly over the blocks with no waiting, the adds included (so it also counts the loss to unequal
causal items; the writer, adding beside the consumers, can beat it).

  tools/fused-bwd-schedule.py [--sms 132] [--add 0.05]
"""
import argparse
import heapq


def make_items(bh, t, causal, order):
    """Each item's steps (head, query tile, turn), items numbered as `order` has them."""
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
    return items


def simulate(bh, t, causal, order, sms, add):
    items = make_items(bh, t, causal, order)
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


def simulate_writer(bh, t, causal, sms, add):
    """The kernel since the writer warps: items from a counter, descending; a block's consumers
    compute a tile (1 unit) and hand its dQ to the block's writer, waiting only while the writer
    still holds the last one (one buffer); the writer waits for the tile's turn and adds (`add`
    units). A block takes its next item when its consumers have handed the last tile."""
    items = make_items(bh, t, causal, "descending")
    done, waiting = {}, {}
    cur, pos = [None] * sms, [0] * sms
    busy = [None] * sms     # the tile the writer holds
    pending = [None] * sms  # a tile the consumers computed while the writer held one
    events = [(0.0, b, "take") for b in range(sms)]
    heapq.heapify(events)
    nxt, end = 0, 0.0

    def start_add(b, tile, now):
        h, qt, turn = tile
        busy[b] = tile
        if turn > 0 and (h, qt, turn - 1) not in done:
            waiting.setdefault((h, qt, turn - 1), []).append(b)
            return
        ready = max(now, done[(h, qt, turn - 1)]) if turn > 0 else now
        heapq.heappush(events, (ready + add, b, "added"))

    def hand(b, now):
        """The consumers hand tile pos of their item at `now`, then go on."""
        if busy[b] is not None:
            pending[b] = now
            return
        start_add(b, items[cur[b]][pos[b]], now)
        pos[b] += 1
        heapq.heappush(events, (now + 1, b, "computed") if pos[b] < len(items[cur[b]])
                       else (now, b, "take"))

    while events:
        now, b, what = heapq.heappop(events)
        if what == "take":
            cur[b], pos[b] = (nxt, 0) if nxt < len(items) else (None, 0)
            nxt += 1
            if cur[b] is not None:
                if items[cur[b]]:
                    heapq.heappush(events, (now + 1, b, "computed"))
                else:
                    heapq.heappush(events, (now, b, "take"))
        elif what == "computed":
            hand(b, now)
        else:  # "added": the writer's add is done
            h, qt, turn = busy[b]
            done[(h, qt, turn)] = now
            end = max(end, now)
            busy[b] = None
            for wb in waiting.pop((h, qt, turn), []):
                heapq.heappush(events, (now + add, wb, "added"))
            if pending[b] is not None:
                pending[b] = None
                hand(b, now)
    if waiting:
        raise RuntimeError("deadlock")
    return end, sum(len(s) for s in items) / sms


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sms", type=int, default=132)
    ap.add_argument("--add", type=float, default=0.05, help="a dQ add's cost, in tile steps")
    a = ap.parse_args()
    orders = ("ascending", "descending", "dynamic", "writer")
    print(f"| B*H | T | mask | ideal | {' | '.join(orders)} |  ({a.sms} blocks, add {a.add})")
    print("|---|---|---|---|---|---|---|---|")
    for bh in (16, 64):
        for t in (1024, 4096, 8192):
            for causal in (False, True):
                res = {o: simulate(bh, t, causal, o, a.sms, a.add) for o in orders[:3]}
                res["writer"] = simulate_writer(bh, t, causal, a.sms, a.add)
                ideal = res["dynamic"][1]
                cells = " | ".join(f"{res[o][0]:.0f} ({ideal / res[o][0]:.2f})" for o in res)
                print(f"| {bh} | {t} | {'causal' if causal else 'none'} | {ideal:.0f} | {cells} |")


if __name__ == "__main__":
    main()
