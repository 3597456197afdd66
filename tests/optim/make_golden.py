"""Writes golden_optim.txt: reference values from torch.optim for fixed cases, read by
test_optim_golden.cpp. Run: python3 tests/optim/make_golden.py > tests/optim/golden_optim.txt

Lines:
  opt <case> <dtype> <step> <param values after that step...>
  sched <case> <lr after construction> <lr after each step...>
  mom <case> <momentum (or beta1) after construction> <after each step...>
"""
import math

import torch

PARAM = [0.5, -1.2, 2.0, 0.1]
GRADS = [
    [0.3, -0.7, 1.5, 0.0],
    [-0.2, 0.4, 1.1, 0.05],
    [0.9, -0.1, -0.6, 0.02],
    [0.05, 0.3, -0.25, -0.4],
    [-0.6, 0.2, 0.7, 0.1],
]

OPTS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": lambda p: torch.optim.Adam(p, lr=0.01),
    "adam_wd_amsgrad": lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    "adamw_amsgrad": lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True),
    "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.01),
    "rmsprop_centered_momentum": lambda p: torch.optim.RMSprop(
        p, lr=0.01, alpha=0.9, momentum=0.9, centered=True, weight_decay=0.1),
    "adagrad": lambda p: torch.optim.Adagrad(
        p, lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5),
}


def fmt(vals):
    return " ".join(repr(float(v)) for v in vals)


def run_opt(name, make, dtype):
    p = torch.tensor(PARAM, dtype=dtype, requires_grad=True)
    opt = make([p])
    for step, g in enumerate(GRADS, 1):
        p.grad = torch.tensor(g, dtype=dtype)
        opt.step()
        print(f"opt {name} {str(dtype).replace('torch.', '')} {step} {fmt(p.detach().tolist())}")


def sched_case(name, make, steps, metrics=None):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    s = make(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for i in range(steps):
        opt.step()
        if metrics is None:
            s.step()
        else:
            s.step(metrics[i])
        lrs.append(opt.param_groups[0]["lr"])
    print(f"sched {name} {fmt(lrs)}")


def momentum_case(name, make_opt, make, steps):
    p = torch.zeros(1, requires_grad=True)
    opt = make_opt([p])
    s = make(opt)
    g = opt.param_groups[0]
    key = "betas" if "betas" in g else "momentum"
    get = (lambda: g["betas"][0]) if key == "betas" else (lambda: g["momentum"])
    lrs, moms = [g["lr"]], [get()]
    for _ in range(steps):
        opt.step()
        s.step()
        lrs.append(g["lr"])
        moms.append(get())
    print(f"sched {name} {fmt(lrs)}")
    print(f"mom {name} {fmt(moms)}")


def main():
    torch.set_printoptions(precision=17)
    for name, make in OPTS.items():
        for dtype in (torch.float64, torch.float32):
            run_opt(name, make, dtype)
    S = torch.optim.lr_scheduler
    sched_case("step", lambda o: S.StepLR(o, step_size=3, gamma=0.5), 10)
    sched_case("multistep", lambda o: S.MultiStepLR(o, milestones=[2, 5, 8], gamma=0.1), 10)
    sched_case("exponential", lambda o: S.ExponentialLR(o, gamma=0.9), 10)
    sched_case("cosine", lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 25)
    sched_case("linear", lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4), 8)
    sched_case("lambda", lambda o: S.LambdaLR(o, lambda e: 0.95 ** e), 6)
    sched_case("onecycle_cos", lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=20), 19)
    sched_case("onecycle_linear", lambda o: S.OneCycleLR(
        o, max_lr=1.0, total_steps=20, anneal_strategy="linear", cycle_momentum=False), 19)
    sched_case("onecycle_three_phase", lambda o: S.OneCycleLR(
        o, max_lr=1.0, total_steps=20, three_phase=True, pct_start=0.25, cycle_momentum=False), 19)
    sched_case("sequential", lambda o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5),
            S.CosineAnnealingLR(o, T_max=10)], milestones=[5]), 16)
    momentum_case("onecycle_momentum_sgd", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                  lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=20), 19)
    momentum_case("onecycle_momentum_adam", lambda p: torch.optim.Adam(p, lr=0.1),
                  lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=20, three_phase=True,
                                         anneal_strategy="linear"), 19)
    metrics = [1.0, 0.95, 0.92, 0.91, 0.93, 0.9, 0.89, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
    sched_case("plateau", lambda o: S.ReduceLROnPlateau(
        o, mode="min", factor=0.5, patience=2, threshold=0.1, cooldown=1), len(metrics), metrics)


if __name__ == "__main__":
    main()
