"""Where PyTorch's time goes for one seed model: its operators over a few
training steps (torch.profiler, CPU), the peer of `scripts/bench --profile`.

  /usr/bin/python3 scripts/torch_profile.py MODEL BATCH fp32|bf16 [STEPS]

bf16 runs the forward and loss under torch.autocast('cpu', torch.bfloat16),
as scripts/torch_seed_models.py does. Times are totals over STEPS (5) steps
after two warm-up steps; measure on an idle machine (docs/benchmarks.md)."""
import os, sys
os.environ.setdefault('GOMP_SPINCOUNT', '10000')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch, torch.nn.functional as F
from torch.profiler import profile, ProfilerActivity
import torch_seed_models as T

if len(sys.argv) < 4 or sys.argv[3] not in ('fp32', 'bf16'):
    sys.exit(__doc__)
name, batch, amp = sys.argv[1], int(sys.argv[2]), sys.argv[3] == 'bf16'
steps = int(sys.argv[4]) if len(sys.argv) > 4 else 5
torch.set_num_threads(int(os.environ.get('EPOCHD_THREADS', '2')))
torch.manual_seed(0)
m = T.seed_models()[name]
opt = torch.optim.Adam(m.parameters(), 1e-3, weight_decay=1e-4)
x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))

def step():
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
        loss = F.cross_entropy(m(x), y)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()

for _ in range(2):
    step()
with profile(activities=[ProfilerActivity.CPU]) as p:
    for _ in range(steps):
        step()
print(f'# {name}, batch {batch}, {sys.argv[3]}, {steps} steps, torch {torch.__version__}, '
      f'{torch.get_num_threads()} threads')
print(p.key_averages().table(sort_by='self_cpu_time_total', row_limit=25))
