"""Markdown report of scripts/gpu-check: epochd's gpu_bench lines and
torch_seed_models.py's lines side by side, with the card's name (CARD) and
the projected time of the seed's full table.
  python3 scripts/gpu_check_report.py BENCH.txt TORCH.txt OUT.md"""
import os, re, sys, datetime
bench, torch, out = sys.argv[1:4]
card = os.environ.get("CARD", "unknown GPU")
ours, ops = {}, []
for line in open(bench):
    if not line.startswith("BENCH "):
        continue
    kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    kv = {k: v.strip('"') for k, v in kv.items()}
    if kv.get("kind") == "model":
        ours[(kv["model"], kv["precision"])] = kv
    elif kv.get("kind") == "op":
        ops.append(kv)
theirs, setting = {}, None
for line in open(torch):
    if line.startswith("@@ "):
        setting = line[3:].strip()
        continue
    m = re.match(r'(\S+)\s+params=\s*([\d,]+)\s+train_img_per_s=\s*([\d.]+)', line)
    if m and setting:
        theirs[(m.group(1), setting)] = float(m.group(3))
models = ["normal_cnn", "residual_cnn", "mlp_mixer_S4", "mlp_mixer_S2", "mlp_mixer_B4", "mlp_mixer_B2"]
settings = sorted({s for (_, s) in theirs})
lines = [f"# Benchmarks on {card}", "",
         f"Measured by `scripts/gpu-check` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC. "
         f"Batch 500, synthetic 3x32x32 data, Adam with clipping; training images per second "
         f"(epochd: the second of two epochs; PyTorch: scripts/torch_seed_models.py, cudnn.benchmark on). "
         f"Exit status of gpu_ops_test: {os.environ.get('OPS_RC', '?')}.", ""]
head = ["model", "params"] + [f"epochd {p}" for p in ("fp32", "tf32", "bf16")] + [f"{s}" for s in settings]
head += ["epochd eval img/s (best)", "best epochd / best PyTorch"]
lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
for m in models:
    row = [m]
    params = next((ours[(m, p)]["params"] for p in ("fp32", "tf32", "bf16") if (m, p) in ours), "")
    row.append(f"{int(params):,}" if params else "")
    best = 0.0
    best_eval = 0.0
    for p in ("fp32", "tf32", "bf16"):
        v = ours.get((m, p))
        row.append(f"{float(v['train_img_s']):,.0f}" if v else "-")
        if v:
            best = max(best, float(v["train_img_s"]))
            best_eval = max(best_eval, float(v["eval_img_s"]))
    tbest = 0.0
    for s in settings:
        v = theirs.get((m, s))
        row.append(f"{v:,.0f}" if v else "-")
        tbest = max(tbest, v or 0.0)
    row.append(f"{best_eval:,.0f}" if best_eval else "-")
    row.append(f"{best / tbest:.2f}x" if best and tbest else "-")
    lines.append("| " + " | ".join(row) + " |")
if ops:
    lines += ["", "## Operations (gpu_bench ops)", "", "| operation | precision | ms | GFLOP/s |", "|---|---|---:|---:|"]
    for o in ops:
        lines.append(f"| {o['op']} | {o['precision']} | {o['ms']} | {o['gflops']} |")
# projected time of the seed's table: 600 epochs x (50,000 train + 10,000 test images) per model
proj = 0.0
for m in models:
    cands = [ours[(m, p)] for p in ("fp32", "tf32", "bf16") if (m, p) in ours]
    if not cands:
        proj = None
        break
    v = max(cands, key=lambda k: float(k["train_img_s"]))
    tr, ev = float(v["train_img_s"]), float(v["eval_img_s"]) or float(v["train_img_s"])
    proj += 600 * (50000 / tr + 10000 / ev)
if proj:
    lines += ["", f"Projected time of the seed's full table (6 models x 600 epochs of CIFAR-10, one run at a time, "
              f"best precision per model): {proj / 3600:.2f} h ({proj / 60:.0f} min)."]
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
