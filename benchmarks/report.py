"""The bench's report: its table, and the numbers the Performance page quotes.

docs/performance.md writes `{{bench:KEY}}` where it states a number; the site
build (tools/mkdocs_hooks.py) fills each in from docs/performance-record.json
with `facts`, so that a new run of `nox -s bench` updates the page's prose
with its table. Only the standard library: the site build imports this file.
"""

from __future__ import annotations

import re
import statistics
from typing import Any

Row = dict[str, Any]
TRAIN, INFER = "encoder-train", "encoder-infer"
SDPA = "F.scaled_dot_product_attention"


def row(rows: list[Row], bench: str, case: str, name: str) -> Row:
    """The one timed (or memory) row of a candidate in a case."""
    found = [
        r
        for r in rows
        if (r["bench"], r["name"]) == (bench, name)
        and case in r["case"]
        and (r["seconds"] is not None or r["unit"] == "bytes")
    ]
    if len(found) != 1:
        raise KeyError(f"{bench} {case} {name}: {len(found)} rows in the record")
    return found[0]


def verdict(found: Row) -> str:
    """How the page says whether a target was met."""
    return "met" if found["status"] == "PASS" else "**missed**"


def facts(record: dict[str, Any]) -> dict[str, str]:
    """Every number of the page's account of one run, formatted as it quotes it."""
    rows = record["rows"]
    out: dict[str, str] = {}
    kernels, kernel_met, faster = [], {}, {}
    for mask in ("padding", "causal"):
        case = f"T=256 N=32 {mask} fwd float32"
        module = row(rows, "attention", f"{case} [module]", "ours MHA fused")
        torch_mha = row(rows, "attention", f"{case} [module]", "nn.MultiheadAttention")
        kernel = row(rows, "attention", f"{case} [kernel]", SDPA)
        kernels.append(kernel["ratio"])
        kernel_met[mask] = kernel["status"] == "PASS"
        out[f"module-{mask}"] = f"{module['ratio']:.1f}"
        out[f"module-{mask}-target"] = verdict(module)
        out[f"module-{mask}-repeats"] = repeats(
            rows, "attention", f"{case} [module]", "ours MHA fused"
        )
        faster[mask] = module["seconds"] < torch_mha["seconds"]
    out["kernel"] = span(kernels, 1)
    out["kernel-target"] = met_with(kernel_met)
    if all(faster.values()) or not any(faster.values()):
        word = "faster" if faster["padding"] else "slower"
        out["vs-torch"] = f"{word} than `nn.MultiheadAttention` with both masks"
    else:
        out["vs-torch"] = (
            "faster than `nn.MultiheadAttention` with the "
            f"{'padding' if faster['padding'] else 'causal'} mask only"
        )
    memory = "T=2048 N=4 padding fwd float32"
    for name, key in (("ours MHA explicit", "explicit"), ("ours MHA fused", "fused")):
        mib = row(rows, "memory", memory, name)["value"] / 2**20
        out[f"memory-{key}"] = f"{mib:.0f}"
    for bench, key in ((TRAIN, "train"), (INFER, "infer")):
        for padding, suffix in ((" 0% pad", "-0"), ("35% pad", ""), ("60% pad", "-60")):
            ours = row(rows, bench, padding, "ours")
            out[f"{key}{suffix}"] = f"{ours['ratio']:.2f}"
            out[f"{key}{suffix}-repeats"] = repeats(rows, bench, padding, "ours")
            if ours["status"]:
                out[f"{key}{suffix}-target"] = verdict(ours)
    for name in ("ours", "nn"):
        share = row(rows, "flops", "encoder train step", name)
        out[f"flops-{name}"] = f"{share['ratio']:.2f}"
    out["flops-target"] = verdict(row(rows, "flops", "encoder train step", "ours"))
    ours = row(rows, TRAIN, "35% pad", "ours")["samples"]
    theirs = row(rows, TRAIN, "35% pad", "nn")["samples"]
    ratios = [b / a for a, b in zip(ours, theirs, strict=True)]
    out["train-repeats-median"] = f"{statistics.median(ratios):.2f}"
    dropout = row(rows, "dropout", "p=", "ours fwd+bwd")
    out["dropout"] = f"{dropout['ratio']:.2f}"
    out["dropout-repeats"] = repeats(rows, "dropout", "p=", "ours fwd+bwd")
    out |= packing_facts(rows) | decode_facts(rows) | varlen_facts(rows)
    return out | peer_facts(rows)


PEER_SIZES = {"64": "d_model=64 ", "128": "d_model=128 "}
HF, NANO = "HF GPT-2 (sdpa)", "nanoGPT-style"


def peer_facts(rows: list[Row]) -> dict[str, str]:
    """TransformerLM against transformers' GPT-2 and the nanoGPT-style model
    (benchmarks/peers.py): ratios at each size, their single repeats, and
    whether the targets were met."""
    out: dict[str, str] = {}
    vs_hf = f"ours vs {HF}"
    for key, size in PEER_SIZES.items():
        for bench in ("lm-train", "lm-eval"):
            name = bench
            ours = row(rows, bench, size, "ours")
            hf = row(rows, bench, size, vs_hf)
            out[f"{name}-{key}"] = f"{ours['ratio']:.2f}"
            out[f"{name}-{key}-repeats"] = repeats(rows, bench, size, "ours")
            out[f"{name}-{key}-hf"] = f"{hf['ratio']:.2f}"
            out[f"{name}-{key}-hf-repeats"] = repeats(rows, bench, size, vs_hf)
            if ours["status"]:
                out[f"{name}-{key}-target"] = verdict(ours)
                out[f"{name}-{key}-hf-target"] = verdict(hf)
        for n in ("1", "32"):
            case = f"{size}128 tokens, N={n} "
            decoded = row(rows, "lm-decode", case, "ours")
            out[f"lm-decode-{n}-{key}"] = f"{decoded['ratio']:.2f}"
            out[f"lm-decode-{n}-{key}-target"] = verdict(decoded)
            step = 1000 * decoded["seconds"] / 128
            out[f"lm-decode-{n}-{key}-step"] = f"{step:.2f}"
        share = row(rows, "lm-flops", f"{size}train step", "ours")
        out[f"lm-flops-{key}"] = f"{share['ratio']:.2f}"
        out[f"lm-flops-{key}-target"] = verdict(share)
        reference = row(rows, "lm-flops", f"{size}train step", NANO)
        out[f"lm-flops-{key}-nano"] = f"{reference['ratio']:.2f}"
    run = row(rows, "lm-run", PEER_SIZES["64"], "ours")
    out["lm-run"] = f"{run['ratio']:.2f}"
    out["lm-run-target"] = verdict(run)
    out["lm-run-repeats"] = repeats(rows, "lm-run", PEER_SIZES["64"], "ours")
    return out


def met_with(met: dict[str, bool]) -> str:
    """How the page says whether a target was met with both masks (met[mask]),
    with one, or with none."""
    if all(met.values()):
        return "met"
    if not any(met.values()):
        return "**missed**"
    (mask,) = (mask for mask, ok in met.items() if ok)  # the other missed
    return f"met with the {mask} mask only"


def repeats(rows: list[Row], bench: str, case: str, name: str) -> str:
    """The lowest and highest per-repeat ratio of a candidate to its case's
    baseline: the spread around the median ratio."""
    ours = row(rows, bench, case, name)
    base = row(rows, bench, case, ours["baseline"])
    ratios = [b / a for a, b in zip(ours["samples"], base["samples"], strict=True)]
    return span(ratios, 2)


def span(values: list[float], digits: int) -> str:
    """'low to high' with `digits` decimals; one number where both round alike."""
    low, high = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return low if low == high else f"{low} to {high}"


def varlen_facts(rows: list[Row]) -> dict[str, str]:
    """Attention sequence by sequence against the padded layout: the lengths
    the record has, each one's ratio, and the spread at the reference T."""
    lengths = sorted(
        {int(r["case"].split()[0][2:]) for r in rows if r["bench"] == "varlen"}
    )
    if len(lengths) < 2:
        raise KeyError(f"varlen: expected several lengths, got {lengths}")
    name = "per sequence"
    ratios = [row(rows, "varlen", f"T={t} N=", name)["ratio"] for t in lengths]
    return {
        "varlen-lengths": listing([str(t) for t in lengths]),
        "varlen": listing([f"{ratio:.2f}" for ratio in ratios]),
        "varlen-128-repeats": repeats(rows, "varlen", "T=128 N=", name),
    }


def listing(items: list[str]) -> str:
    """'a, b and c'."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def decode_facts(rows: list[Row]) -> dict[str, str]:
    """Greedy decoding with the cache against the prefix rerun, for the
    reference batch (decode-LENGTH) and one sequence (decode-1-LENGTH)."""
    batches = set()
    for r in rows:
        found = re.search(r"N=(\d+) ", r["case"])
        if r["bench"] == "decode" and found:
            batches.add(int(found.group(1)))
    if len(batches) != 2:
        raise KeyError(f"decode: expected two batch sizes, got {sorted(batches)}")
    large, one = sorted(batches, reverse=True)
    out = {"decode-batch": str(large)}
    for n, prefix in ((large, "decode"), (one, "decode-1")):
        for length in ("32", "128", "256"):
            case = f"{length} tokens, N={n} "
            cached = row(rows, "decode", case, "cache")
            out[f"{prefix}-{length}"] = f"{cached['ratio']:.1f}"
            out[f"{prefix}-{length}-repeats"] = repeats(rows, "decode", case, "cache")
            step = 1000 * cached["seconds"] / int(length)
            out[f"{prefix}-{length}-step"] = f"{step:.1f}"
    out["decode-128-target"] = verdict(
        row(rows, "decode", f"128 tokens, N={large} ", "cache")
    )
    return out


def packing_facts(rows: list[Row]) -> dict[str, str]:
    """The packing benchmark: its documents, rows, and the gain in real tokens/s."""
    packed = row(rows, "packing", "documents", "packed (document mask)")
    padded = row(rows, "packing", "documents", "padded (one document per row)")
    case = re.fullmatch(
        r"(\d+) documents of (\d+)-(\d+) tokens, T=(\d+): (\d+) rows padded, "
        r"(\d+) packed, \w+",
        packed["case"],
    )
    if case is None:
        raise KeyError(f"packing: a case the page cannot read: {packed['case']}")
    documents, low, high, length, padded_rows, packed_rows = case.groups()
    return {
        "packing": f"{packed['ratio']:.2f}",
        "packing-repeats": repeats(rows, "packing", "documents", packed["name"]),
        "packing-documents": documents,
        "packing-lengths": f"{low} to {high}",
        "packing-length": length,
        "packing-rows": f"{padded_rows} rows to {packed_rows}",
        "packing-real": f"{padded['value'] / 1e3:.1f}k to {packed['value'] / 1e3:.1f}k",
    }


def format_value(value: float | None, unit: str) -> str:
    """Human units: MiB for bytes, G for FLOP/s, k for tokens/s."""
    if value is None:
        return ""
    if unit == "bytes":
        return f"{value / 2**20:.1f} MiB"
    if unit == "FLOP/s":
        return f"{value / 1e9:.1f} GFLOP/s"
    return f"{value / 1e3:.1f}k {unit}"


def print_table(rows: list[Any]) -> None:
    """One line per row; the case is printed once, above its candidates."""
    head = f"{'candidate':<32} {'ms/call':>9} {'value':>22} {'ratio':>7}  target"
    print(head)
    print("-" * len(head))
    last = None
    for row in rows:
        if (row.bench, row.case) != last:
            print(f"[{row.bench}] {row.case}   (ratio: baseline {row.baseline} / x)")
            last = (row.bench, row.case)
        ms = f"{row.seconds * 1e3:9.2f}" if row.seconds is not None else " " * 9
        ratio = f"{row.ratio:7.2f}" if row.ratio is not None else " " * 7
        target = f">={row.target:.1f}x {row.status}" if row.status else ""
        value = format_value(row.value, row.unit)
        print(f"  {row.name:<30} {ms} {value:>22} {ratio}  {target}")
    targeted = [r for r in rows if r.status]
    if targeted:
        print("\nTargets:")
        for r in targeted:
            print(
                f"  {r.status}  {r.bench} {r.case}: {r.name} {r.ratio:.2f}x "
                f"(>= {r.target:.1f}x vs {r.baseline})"
            )
