#!/usr/bin/env python3
"""Rewrites one CUDA source (.cu/.cuh) into C++ that the CPU emulator (tools/cuda_emu) compiles.

    rewrite_launches.py <input> <output>

Three rewrites, each keeping the line count so the `#line` directive at the top maps every
diagnostic and __FILE__/__LINE__ back to the original file:

  name<T, U><<<grid, block, shmem, stream>>>(args)
      -> ::ember_emu::launch("name<T, U>", [](auto... a) { name<T, U>(a...); },
                             grid, block, shmem, stream)(args)
     (a generic lambda, so kernel template arguments left to deduction are deduced as in CUDA)
  __shared__ [__align__(n)] T a[N], b;
      -> static [__align__(n)] T a[N], b; ::ember_emu::shared_var(&a, sizeof(a)); ...
         (block-wide storage, poisoned at the start of each block, counted against the limit)
  extern __shared__ [__align__(n)] T name[];
      -> T* const name = reinterpret_cast<T*>(::ember_emu::dynamic_shared());
  #pragma unroll [n] -> removed (GCC does not know it)
"""
import re
import sys

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def fail(path, text, pos, msg):
    line = text.count("\n", 0, pos) + 1
    sys.exit(f"{path}:{line}: cuda_emu rewrite: {msg}")


def kernel_name_start(text, end):
    """Start of the kernel expression that ends just before `end` (the `<<<`): an optionally
    qualified identifier with optional template arguments, possibly on earlier lines."""
    i = end
    while i > 0 and text[i - 1].isspace():
        i -= 1
    if i > 0 and text[i - 1] == ">":  # template arguments: match angle brackets backwards
        depth = 0
        while i > 0:
            i -= 1
            c = text[i]
            if c == ">":
                depth += 1
            elif c == "<":
                depth -= 1
                if depth == 0:
                    break
        while i > 0 and text[i - 1].isspace():
            i -= 1
    # identifier, possibly qualified (a::b::c)
    while True:
        j = i
        while j > 0 and (text[j - 1].isalnum() or text[j - 1] == "_"):
            j -= 1
        if j == i:
            return None
        i = j
        if i >= 2 and text[i - 2:i] == "::":
            i -= 2
            continue
        return i


def rewrite_launches(path, text):
    out = []
    pos = 0
    while True:
        k = text.find("<<<", pos)
        if k < 0:
            out.append(text[pos:])
            return "".join(out)
        start = kernel_name_start(text, k)
        if start is None or start < pos:
            fail(path, text, k, "cannot find the kernel name before <<<")
        close = text.find(">>>", k)
        if close < 0:
            fail(path, text, k, "no >>> after <<<")
        paren = close + 3
        while paren < len(text) and text[paren].isspace():
            paren += 1
        if paren >= len(text) or text[paren] != "(":
            fail(path, text, k, "expected ( after >>>")
        name = text[start:k]
        label = " ".join(name.split()).replace("\\", "\\\\").replace('"', '\\"')
        config = text[k + 3:close]
        # keep the newlines of the original (name and configuration may span lines)
        out.append(text[pos:start])
        out.append(f'::ember_emu::launch("{label}", [](auto... ember_emu_args) {{ {name.strip()}'
                   f'(ember_emu_args...); }}, {config}){text[close + 3:paren]}(')
        out.append("\n" * (name.count("\n") - name.strip().count("\n")))
        pos = paren + 1


def split_top_level(s):
    parts, depth, cur = [], 0, []
    for c in s:
        if c in "([{<":
            depth += 1
        elif c in ")]}>":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return parts


def declarator_name(decl):
    head = decl.split("[", 1)[0]
    names = IDENT.findall(head)
    return names[-1] if names else None


EXTERN_SHARED = re.compile(
    r"extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s*)?([^;\[]*?)\s*([A-Za-z_]\w*)\s*\[\s*\]\s*;")
SHARED = re.compile(r"__shared__\s+([^;]*);")


def rewrite_shared(path, text):
    def extern_sub(m):
        ty, name = m.group(1).strip(), m.group(2)
        return (f"{ty}* const {name} = reinterpret_cast<{ty}*>(::ember_emu::dynamic_shared());"
                + "\n" * m.group(0).count("\n"))

    text = EXTERN_SHARED.sub(extern_sub, text)

    def shared_sub(m):
        decl = m.group(1)
        regs = []
        for part in split_top_level(decl):
            name = declarator_name(part)
            if name is None:
                fail(path, text, m.start(), "cannot parse the __shared__ declaration")
            regs.append(f" ::ember_emu::shared_var(&{name}, sizeof({name}));")
        body = decl.replace("\n", " ")
        return f"static {body};" + "".join(regs) + "\n" * decl.count("\n")

    return SHARED.sub(shared_sub, text)


PRAGMA_UNROLL = re.compile(r"^[ \t]*#[ \t]*pragma[ \t]+unroll\b[^\n]*$", re.M)


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    n_lines = text.count("\n")
    text = PRAGMA_UNROLL.sub("", text)
    text = rewrite_launches(src, text)
    text = rewrite_shared(src, text)
    if text.count("\n") != n_lines:
        sys.exit(f"{src}: cuda_emu rewrite changed the line count ({n_lines} -> {text.count(chr(10))})")
    with open(dst, "w", encoding="utf-8") as f:
        f.write(f'#line 1 "{src}"\n')
        f.write(text)


if __name__ == "__main__":
    main()
