"""The arrows of docs/architecture.md for the dashboard, checked in the
sources: cli/'s rendering library includes nothing of service/, web/ or the
commands, and web/ includes from cli/ only the rendering library's headers
(and nothing from the commands)."""
import os
import re
import sys

root = sys.argv[1]
RENDER = ['compare', 'curves', 'status', 'text_table', 'plot_svg']
render_headers = {f'cli/{n}.h' for n in RENDER}
problems = []


def includes(path):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            m = re.match(r'\s*#\s*include\s*"([^"]+)"', line)
            if m:
                yield n, m.group(1)


for name in RENDER:
    for ext in ('.c', '.h'):
        path = os.path.join(root, 'cli', name + ext)
        for n, inc in includes(path):
            if not (inc in render_headers or inc.startswith('db/')):
                problems.append(f'{path}:{n}: the rendering library includes {inc}')
web = os.path.join(root, 'web')
for f in sorted(os.listdir(web)):
    if f.endswith(('.c', '.h')):
        for n, inc in includes(os.path.join(web, f)):
            if inc.startswith('cli/') and inc not in render_headers:
                problems.append(f'web/{f}:{n}: web/ includes {inc}, which is not the rendering library')
for d in ('engine', 'gpu', 'schema', 'db', 'service'):
    for dirpath, _, files in os.walk(os.path.join(root, d)):
        for f in files:
            if f.endswith(('.c', '.h', '.cu')):
                for n, inc in includes(os.path.join(dirpath, f)):
                    if inc.startswith(('web/', 'cli/')):
                        problems.append(f'{os.path.join(dirpath, f)}:{n}: {d}/ includes {inc}')
for p in problems:
    print(p)
print(f'{len(problems)} problem(s)' if problems else 'the arrows point one way')
sys.exit(1 if problems else 0)
