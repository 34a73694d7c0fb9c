"""Checks scripts/gpu_check_report.py on hand-made gpu_bench and
torch_seed_models.py output: the table's cells, the ratio column, the
operations table and the projected time of the seed's full table."""
import os, subprocess, sys, tempfile

script = sys.argv[1]
bench = """BENCH kind=op op="conv 16->16 3x3 on 32x32 forward" precision=tf32 ms=1.2500 gflops=9000.0
some other line
""" + "".join(
    f"BENCH kind=model model={m} precision={p} params=1000 train_img_s={v} eval_img_s={2 * v} epoch_s=1 loss=2.3\n"
    for m in ("normal_cnn", "residual_cnn", "mlp_mixer_S4", "mlp_mixer_S2", "mlp_mixer_B4", "mlp_mixer_B2")
    for p, v in (("fp32", 10000.0), ("tf32", 50000.0), ("bf16", 25000.0)))
torch = """@@ torch eager fp32
# torch 2.11.0, NVIDIA H100, batch 500, env {}
normal_cnn     params=1,183,322 train_img_per_s=  5000.0 step_s=0.100
@@ torch eager tf32
normal_cnn     params=1,183,322 train_img_per_s= 10000.0 step_s=0.050
"""
with tempfile.TemporaryDirectory() as d:
    paths = [os.path.join(d, n) for n in ("bench.txt", "torch.txt", "out.md")]
    open(paths[0], "w").write(bench)
    open(paths[1], "w").write(torch)
    env = dict(os.environ, CARD="Test Card 9000", OPS_RC="0")
    subprocess.run([sys.executable, script] + paths, check=True, env=env, stdout=subprocess.DEVNULL)
    out = open(paths[2]).read()

def must(s):
    if s not in out:
        sys.exit(f"missing {s!r} in:\n{out}")

must("# Benchmarks on Test Card 9000")
must("| model | params | epochd fp32 | epochd tf32 | epochd bf16 | torch eager fp32 | torch eager tf32 |")
must("| normal_cnn | 1,000 | 10,000 | 50,000 | 25,000 | 5,000 | 10,000 | 100,000 | 5.00x |")
must("| mlp_mixer_B2 | 1,000 | 10,000 | 50,000 | 25,000 | - | - | 100,000 | - |")
must("| conv 16->16 3x3 on 32x32 forward | tf32 | 1.2500 | 9000.0 |")
# 6 models x 600 epochs x (50,000 / 50,000 + 10,000 / 100,000) s = 3960 s
must("1.10 h (66 min)")
print("ok")
