#!/usr/bin/env python3
"""`epochd serve` with `executor: slurm` against real, throwaway Slurm clusters
(slurmctld + slurmd + munged of Debian's slurm-wlm in a temporary folder,
tests/service/slurm_cluster.py). Every check reads the database with
Python's sqlite3 and Slurm with its own commands; resumed runs are compared
bit for bit with the same spec trained uninterrupted by `epochd run`.

cluster 1 (2 CPUs, 2 fake GPUs):
  capacity   six runs with room for two: all done, no attempt spent, `status`
             shows them PENDING with job ids while Slurm holds them
  cap        slurm.max_jobs: never more jobs in Slurm than that
  latency    submit-to-start through Slurm (MEASURE lines)
  cancel     `epochd cancel` of a running and of a pending job: cancelled, job CANCELLED
  refused    --gres=gpu:3: failed at once with Slurm's reason
  gpu        device: cuda asks for --gres=gpu:1; on a node without a working GPU
             "no CUDA device" is retried, not final
  elsewhere  a worker in its own PID namespace (as on another host) runs, under
             Slurm and under the local executor
  controller slurmctld stopped: the run waits (sbatch failed), then is submitted once
cluster 2 (8 CPUs, no GPU), beside cluster 1's scenarios:
  scancel    a scancel from outside: interrupted, requeued, resumed, no attempt spent
  requeue    Slurm requeues the job itself (scontrol requeue): the same job resumes
  timeout    a --time limit: the same, job TIMEOUT (Slurm checks limits about once a
             minute: this one runs in a thread beside the others)
  crash      kill -9 of the service: the restarted service adopts the job (one job)
  crash+step kill -9 of the service and of the batch step: the job's end is read back,
             one retry, no orphan allocation
  window     the service died between sbatch and recording the job: adopted by name
  stops      three stops of the service (on_stop: interrupt): resumable, no attempt spent
  leave      on_stop: leave: the job runs on while no service runs, then is adopted
cluster 3 (MinJobAge 2 s), beside the others:
  gone       jobs that ended while no service ran and that squeue no longer lists: read
             back from the jobcomp log, or (no record at all) resumed in a new job

  test_serve_slurm.py EPOCHD   (exit 77: skipped where Slurm cannot run)
  EPOCHD_SLURM_TEST_ONLY=outside,crashes runs only those scenarios (functions below)
"""
import calendar
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import slurm_cluster
from serve_util import (EPOCHD, Service, check, finish, gpu_count, reference_epochs, spec, tempdir, wait_until,
                        write)

why_not = slurm_cluster.unavailable()
if why_not:
    print(f'skipped: {why_not}', flush=True)
    sys.exit(77)

N = 12  # epochs of the slow spec


def slow(name, epochs=N, seed=21, extra=''):
    """About a third of a second per epoch on one thread: slow enough to act on a job in the
    middle (8192 samples took 0.1 s once Adam was vectorised, and jobs ended under the checks)."""
    return spec(name, epochs=epochs, seed=seed, train=24576, test=256, units='[256, 256, 4]', shape='[1, 16, 16]',
                batch=64, extra=extra)


def slurm_service(tmp, cluster, name, slurm='', extra=''):
    d = os.path.join(tmp, name)
    os.makedirs(d, exist_ok=True)
    return Service(d, settle_ms=100, threads=1, env={'SLURM_CONF': cluster.conf},
                   extra=f'executor: slurm\nslurm:\n  poll_ms: 200\n{slurm}{extra}')


def run_id(sv, name, timeout=30):
    r = wait_until(lambda: sv.q('SELECT id FROM runs WHERE name = ?', (name,)), timeout, f'{name} to be queued')
    return r[0][0] if r else 0


def row(sv, rid, cols):
    r = sv.q(f'SELECT {cols} FROM runs WHERE id = ?', (rid,))
    return r[0] if r else None


def jobs(sv, rid):
    return sv.q('SELECT job_id, state, exit_code, started_at, ended_at, node FROM slurm_jobs WHERE run_id = ?'
                ' ORDER BY id', (rid,))


def current_job(sv, rid, timeout=60):
    r = wait_until(lambda: sv.q('SELECT slurm_job_id FROM runs WHERE id = ? AND slurm_job_id IS NOT NULL', (rid,)),
                   timeout, f'run {rid} to have a Slurm job')
    return r[0][0] if r else 0


def worker_pid(cluster, job_id, timeout=30):
    """The worker of a running job: the batch step's process (the script execs it)."""
    def find():
        _, out, _ = cluster.run('scontrol', 'listpids', str(job_id))
        for line in out.splitlines()[1:]:
            f = line.split()
            if f and f[0].isdigit():
                try:
                    with open(f'/proc/{f[0]}/cmdline', 'rb') as c:
                        if b'worker' in c.read():
                            return int(f[0])
                except OSError:
                    pass
        return None
    return wait_until(find, timeout, f'the worker of Slurm job {job_id}')


def same_epochs(sv, rid, ref, what):
    got = sv.epochs(rid)
    check([r[0] for r in got] == list(range(1, N + 1)), f'{what}: epochs 1..{N} exactly once: {[r[0] for r in got]}')
    check(sv.q('SELECT count(*) FROM epochs WHERE run_id = ?', (rid,))[0][0] == N, f'{what}: no duplicate epoch rows')
    for a, b in zip(got, ref):
        check(a == b, f'{what}: epoch {a[0]} equals the uninterrupted run bit for bit:\n  {a}\n  {b}')


def jobs_named(cluster, rid, name):
    """Slurm's jobs of run rid named `name` (several services share a cluster: their run ids repeat)."""
    return {j: s for j, (n, s, _) in cluster.jobs().items() if n == f'epochd-{rid}-{name}'}


def no_live_job(cluster, rid, name, what):
    live = [(j, s) for j, s in jobs_named(cluster, rid, name).items()
            if s in ('PENDING', 'RUNNING', 'COMPLETING', 'CONFIGURING')]
    check(not live, f'{what}: no job of the run is left holding an allocation: {live}')


def change(sv, sql, args=()):
    """A write to the database while no service runs (what a crash could have left)."""
    con = sqlite3.connect(sv.db, timeout=10)
    with con:
        con.execute(sql, args)
    con.close()


def status_text(sv):
    p = subprocess.run([EPOCHD, 'status', '--db', sv.db], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.stdout


# ---- cluster 1 ----

def capacity(tmp, c1, ref_short):
    sv = slurm_service(tmp, c1, 'capacity')
    try:
        sv.start()
        for i in range(6):
            write(os.path.join(sv.exp, f'cap{i}.yaml'), slow(f'cap{i}', epochs=3))
        ids = [run_id(sv, f'cap{i}') for i in range(6)]
        pending_lines, most_running = set(), 0

        def watch():
            nonlocal most_running
            for line in status_text(sv).splitlines():
                m = re.search(r'Slurm job (\d+) PENDING \((\w+)\)', line)
                if m and ' queued ' in line:
                    pending_lines.add((m.group(1), m.group(2)))
            running = sum(1 for _, s, _ in c1.jobs().values() if s == 'RUNNING')
            most_running = max(most_running, running)
            return all(sv.status_of(i) == 'done' for i in ids)
        wait_until(watch, 240, 'the six runs to be done', interval=0.1)
        print(f'status showed pending jobs: {sorted(pending_lines)}')
        check(any(r == 'Resources' for _, r in pending_lines), f'status showed "PENDING (Resources)": {pending_lines}')
        check(len({j for j, _ in pending_lines}) >= 2, f'several jobs were seen pending: {pending_lines}')
        check(most_running <= 2, f'Slurm ran at most two at once (2 CPUs): {most_running}')
        for i in ids:
            r = row(sv, i, 'status, attempts, preemptions, error, slurm_state, started_at')
            check(r[:5] == ('done', 1, 0, None, 'COMPLETED'), f'capacity run {i}: done, 1 attempt, no preemption: {r}')
            js = jobs(sv, i)
            check(len(js) == 1 and js[0][1] == 'COMPLETED' and js[0][2] == '0:0', f'run {i}: one job, COMPLETED: {js}')
            if js:
                check(r[5] == js[0][3], f'run {i}: started_at is the job\'s start in Slurm: {r[5]} {js[0][3]}')
            got = sv.epochs(i)
            check(len(got) == 3, f'run {i}: three epochs')
        # the runs that waited started when Slurm started them, after they were submitted
        subs = sv.q('SELECT r.id, j.submitted_at, r.started_at FROM runs r JOIN slurm_jobs j ON j.run_id = r.id')
        check(all(s[:19] <= st for _, s, st in subs), f'started_at >= submission (to the second): {subs}')
        check(len({st for _, _, st in subs}) >= 3, f'the six did not all start at once: {subs}')
        print('ROWS capacity:', sv.q('SELECT id, name, status, attempts, preemptions, slurm_job_id, slurm_state,'
                                     ' started_at FROM runs ORDER BY id'))
        print('ROWS capacity jobs:', sv.q('SELECT run_id, job_id, submitted_at, started_at, state, exit_code'
                                          ' FROM slurm_jobs ORDER BY id'))

        # submit-to-start latency on the idle cluster, one run at a time
        lat_slurm, lat_file, lat_line = [], [], []
        for i in range(5):
            write(os.path.join(sv.exp, f'lat{i}.yaml'), spec(f'lat{i}', epochs=1))
            rid = run_id(sv, f'lat{i}')
            t_sub = None
            j = wait_until(lambda: sv.q('SELECT job_id, submitted_at FROM slurm_jobs WHERE run_id = ?', (rid,)), 30,
                           'the latency run to be submitted', interval=0.01)
            if not j:
                continue
            job, sub = j[0]
            t_sub = calendar.timegm(time.strptime(sub[:19], '%Y-%m-%dT%H:%M:%S')) + float(sub[19:23])
            out = os.path.join(sv.state, 'runs', str(rid), f'job-{job}.0.out')
            wait_until(lambda: os.path.exists(out), 30, 'the job to start', interval=0.005)
            t_file = time.time()
            wait_until(lambda: os.path.exists(out) and os.path.getsize(out) > 0, 30, 'the worker to report',
                       interval=0.005)
            t_line = time.time()
            wait_until(lambda: sv.status_of(rid) == 'done', 60, 'the latency run to be done')
            info = c1.job(job)
            st, su = info.get('StartTime', ''), info.get('SubmitTime', '')
            if st and su and st != 'Unknown':
                lat_slurm.append(time.mktime(time.strptime(st, '%Y-%m-%dT%H:%M:%S')) -
                                 time.mktime(time.strptime(su, '%Y-%m-%dT%H:%M:%S')))
            lat_file.append(t_file - t_sub)
            lat_line.append(t_line - t_sub)
        if lat_file:
            med = lambda v: sorted(v)[len(v) // 2]
            print(f'MEASURE submit-to-start through Slurm over {len(lat_file)} runs (median, min-max): sbatch accepted '
                  f'-> job process started {med(lat_file):.2f} s ({min(lat_file):.2f}-{max(lat_file):.2f}); '
                  f'-> the worker\'s first line {med(lat_line):.2f} s ({min(lat_line):.2f}-{max(lat_line):.2f}); '
                  f'Slurm\'s own StartTime - SubmitTime {lat_slurm} s (whole seconds)')

        # epochd cancel of a running and of a pending job (room for two, three runs). Epochs
        # enough that the running one is still running after the pending one is cancelled
        # (12 took 1-2 s once Adam was vectorised); all three are cancelled below.
        for i in range(3):
            write(os.path.join(sv.exp, f'can{i}.yaml'), slow(f'can{i}', epochs=400, seed=30 + i))
        cids = [run_id(sv, f'can{i}') for i in range(3)]
        wait_until(lambda: sum(1 for i in cids if sv.status_of(i) == 'running') == 2 and
                   sum(1 for i in cids if row(sv, i, 'slurm_state')[0] == 'PENDING') == 1, 60,
                   'two running and one pending')
        running = [i for i in cids if sv.status_of(i) == 'running']
        pending = [i for i in cids if sv.status_of(i) == 'queued']
        if running and pending:
            run_job = row(sv, running[0], 'slurm_job_id')[0]
            pend_job = row(sv, pending[0], 'slurm_job_id')[0]
            # the pending one first: cancelling the running one frees room in which Slurm may start it
            for rid, job, what in ((pending[0], pend_job, 'pending'), (running[0], run_job, 'running')):
                p = subprocess.run([EPOCHD, 'cancel', str(rid), '--db', sv.db],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                check(p.returncode == 0, f'epochd cancel {what}: {p.returncode} {p.stdout}')
                wait_until(lambda: sv.status_of(rid) == 'cancelled', 60, f'the {what} run to be cancelled')
                r = row(sv, rid, 'status, error, slurm_job_id')
                check(r == ('cancelled', 'cancelled by request', job), f'{what} run cancelled: {r}')
                js = jobs(sv, rid)
                check(len(js) == 1 and js[0][1] == 'CANCELLED', f'{what} run: its job CANCELLED: {js}')
                check(c1.jobs().get(job, ('', ''))[1] == 'CANCELLED', f'Slurm says job {job} CANCELLED')
                print(f'ROWS cancel {what}:', sv.q('SELECT id, status, error, attempts, slurm_job_id FROM runs'
                                                   ' WHERE id = ?', (rid,)), js)
            check(row(sv, pending[0], 'attempts')[0] == 0, 'the pending job never started: no attempt')
        for i in cids:  # the third one is not needed to the end
            if sv.status_of(i) in ('queued', 'running'):
                subprocess.run([EPOCHD, 'cancel', str(i), '--db', sv.db], stdout=subprocess.DEVNULL)

        # an impossible request: Slurm refuses it, the run fails at once with Slurm's reason
        write(os.path.join(sv.exp, 'huge.yaml'), spec('huge', extra='slurm: {extra: [--gres=gpu:3]}\n'))
        rid = run_id(sv, 'huge')
        wait_until(lambda: sv.status_of(rid) == 'failed', 60, 'the impossible request to fail')
        r = row(sv, rid, 'status, attempts, error')
        print('ROWS refused:', r)
        check(r[1] == 0 and 'Requested node configuration is not available' in (r[2] or ''),
              f'failed at once, never started, with Slurm\'s reason: {r}')
        check('Slurm refused the job: sbatch: error: Batch job submission failed' in (r[2] or ''), f'error says so: {r}')
        check(jobs(sv, rid) == [], 'no job was recorded for a refused submission')

        # a spec word the service does not allow is a located spec error
        write(os.path.join(sv.exp, 'nomail.yaml'), spec('nomail', extra='slurm: {extra: [--mail-user=x]}\n'))
        rid = run_id(sv, 'nomail')
        r = row(sv, rid, 'status, error')
        check(r[0] == 'invalid' and re.search(r'nomail.yaml:\d+:\d+: slurm.extra\[0\]: --mail-user is not among',
                                              r[1] or ''), f'a word outside the allow-list: {r}')

        # device: cuda asks Slurm for a GPU; the worker opens the GPU Slurm gave it
        write(os.path.join(sv.exp, 'gpu.yaml'), spec('gpu', device='cuda'))
        rid = run_id(sv, 'gpu')
        wait_until(lambda: sv.status_of(rid) in ('done', 'failed'), 120, 'the GPU run to end')
        r = row(sv, rid, 'status, attempts, error')
        js = jobs(sv, rid)
        print('ROWS gpu:', r, js)
        info = c1.job(js[0][0]) if js else {}
        check(re.search(r'gres[:/]gpu[:=]1', ' '.join(f'{k}={v}' for k, v in info.items())) is not None,
              f'the job asked for one GPU: {info}')
        if gpu_count() > 0:
            check(r[0] == 'done', f'a GPU run on a node with a GPU: {r}')
        elif 'built without CUDA' in (r[2] or ''):
            check(r[1] == 1, f'a build without CUDA fails for good: {r}')
        else:
            check(r[0] == 'failed' and 'no CUDA device on' in (r[2] or '') and '(after 3 attempts)' in (r[2] or ''),
                  f'"no CUDA device" on a node is retried: {r}')
            check(len(js) == 3, f'three jobs for three attempts: {js}')
        rc = sv.stop()
        check(rc == 0, f'capacity service exit status {rc}')
    finally:
        sv.cleanup()


def cap(tmp, c1):
    """slurm.max_jobs: no more jobs submitted than that, whatever the cluster could hold."""
    sv = slurm_service(tmp, c1, 'cap', slurm='  max_jobs: 2\n')
    try:
        sv.start()
        for i in range(4):
            write(os.path.join(sv.exp, f'm{i}.yaml'), slow(f'm{i}', epochs=2, seed=40 + i))
        ids = [run_id(sv, f'm{i}') for i in range(4)]
        comment = f'epochd {os.path.realpath(sv.state)}'
        most, notes = 0, set()

        def watch():
            nonlocal most
            _, out, _ = c1.run('squeue', '-h', '-t', 'PENDING,RUNNING,CONFIGURING,COMPLETING', '--Format=JobID:|,Comment:')
            most = max(most, sum(1 for line in out.splitlines() if line.split('|', 1)[-1].strip() == comment))
            notes.update(n for (n,) in sv.q("SELECT note FROM runs WHERE note LIKE 'waiting:%'"))
            return all(sv.status_of(i) == 'done' for i in ids)
        wait_until(watch, 180, 'the four runs under max_jobs 2', interval=0.05)
        check(most == 2, f'max_jobs 2: at most two jobs in Slurm at once, and two were: {most}')
        check('waiting: 2 Slurm jobs in flight (slurm.max_jobs)' in notes, f'the waiting runs say why: {notes}')
        sv.stop()
    finally:
        sv.cleanup()


def elsewhere(tmp, c1):
    """A worker that sees other pids, as on another host: its own PID namespace."""
    probe = subprocess.run(['unshare', '--pid', '--fork', '--mount-proc', 'true'], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    if probe.returncode != 0:
        print('note: unshare --pid is not available here; the other-host scenario is not run')
        return
    prefix = 'worker_prefix: [unshare, --pid, --fork, --mount-proc]\n'
    for kind in ('slurm', 'local'):
        if kind == 'slurm':
            sv = slurm_service(tmp, c1, 'elsewhere-slurm', extra=prefix)
        else:
            d = os.path.join(tmp, 'elsewhere-local')
            os.makedirs(d, exist_ok=True)
            sv = Service(d, settle_ms=100, threads=1, extra=prefix)
        try:
            sv.start()
            write(os.path.join(sv.exp, 'ns.yaml'), spec('ns', epochs=2))
            rid = run_id(sv, 'ns')
            wait_until(lambda: sv.status_of(rid) in ('done', 'failed'), 90, f'the {kind} run in a PID namespace')
            r = row(sv, rid, 'status, attempts, error')
            print(f'ROWS elsewhere {kind}:', r)
            check(r == ('done', 1, None), f'{kind}: a worker in another PID namespace runs: {r}')
            check('worker 1 started' in sv.log_text(), f'{kind}: the worker saw itself as pid 1 (another namespace)')
            check('has gone' not in sv.log_text(), f'{kind}: the worker did not take the service for dead')
            sv.stop()
        finally:
            sv.cleanup()


def controller(tmp, c1):
    """slurmctld away: sbatch fails in a way another try cures; the run waits and is submitted once it is back."""
    sv = slurm_service(tmp, c1, 'controller')
    try:
        sv.start()
        c1.stop_controller()
        write(os.path.join(sv.exp, 'cc.yaml'), spec('cc', epochs=2))
        rid = run_id(sv, 'cc')
        note = wait_until(lambda: sv.q("SELECT note FROM runs WHERE id = ? AND note LIKE 'waiting: sbatch failed%'",
                                       (rid,)), 180, 'the run to wait for the controller')
        print('ROWS controller away:', row(sv, rid, 'status, attempts, note'))
        check(sv.status_of(rid) == 'queued' and row(sv, rid, 'attempts')[0] == 0, 'it waits, queued, no attempt')
        c1.start_controller()
        wait_until(lambda: sv.status_of(rid) == 'done', 180, 'the run to be submitted once the controller is back')
        r = row(sv, rid, 'status, attempts, preemptions, note')
        js = jobs(sv, rid)
        print('ROWS controller back:', r, js)
        check(r == ('done', 1, 0, None), f'controller: done, one attempt: {r}')
        check(len(js) == 1 and js[0][1] == 'COMPLETED', f'controller: one job: {js}')
        check(note and 'Unable to contact slurm controller' in note[0][0], f'the note says why: {note}')
        sv.stop()
    finally:
        sv.cleanup()


# ---- cluster 3 (Slurm forgets ended jobs after 2 s) ----

def gone(tmp, c3):
    """Jobs that ended while no service ran and that Slurm no longer lists: one found in the jobcomp log
    (adopted: its epochs and end read back), one Slurm keeps no record of (resumed in a new job)."""
    sv = slurm_service(tmp, c3, 'gone', slurm='  on_stop: leave\n')
    try:
        sv.start()
        write(os.path.join(sv.exp, 'g1.yaml'), slow('g1', epochs=3))
        write(os.path.join(sv.exp, 'g2.yaml'), slow('g2', epochs=3))
        g1, g2 = run_id(sv, 'g1'), run_id(sv, 'g2')
        wait_until(lambda: sv.status_of(g1) == 'running' and sv.status_of(g2) == 'running', 60, 'both to run')
        j1, j2 = current_job(sv, g1), current_job(sv, g2)
        rc = sv.stop()
        check(rc == 0, f'gone: stop (leave): {rc}')
        wait_until(lambda: j1 not in c3.jobs() and j2 not in c3.jobs(), 200, 'Slurm to forget both ended jobs')
        c3.forget_completed(j2)
        sv.start()
        wait_until(lambda: sv.status_of(g1) == 'done' and sv.status_of(g2) == 'done', 120, 'both to be done')
        text = sv.log_text()
        check(f'adopting Slurm job {j1} (COMPLETED)' in text, 'the job in the jobcomp log is adopted')
        check(f'Slurm job {j2} is gone and Slurm keeps no record of it' in text, 'the other is known to be gone')
        r1, r2 = row(sv, g1, 'status, attempts, preemptions'), row(sv, g2, 'status, attempts, preemptions')
        js1, js2 = jobs(sv, g1), jobs(sv, g2)
        print('ROWS gone (jobcomp):', r1, js1)
        print('ROWS gone (no record):', r2, js2)
        check(r1 == ('done', 1, 0) and [j[:3] for j in js1] == [(j1, 'COMPLETED', '0:0')],
              f'adopted from the jobcomp log: done by its one job: {r1} {js1}')
        check(r2 == ('done', 1, 0) and len(js2) == 2 and js2[0][:2] == (j2, 'GONE') and js2[1][1] == 'COMPLETED',
              f'no record: resumed in a second job, no attempt spent: {r2} {js2}')
        for rid in (g1, g2):
            check([e[0] for e in sv.epochs(rid)] == [1, 2, 3], f'run {rid}: epochs 1..3 once each')
        sv.stop()
    finally:
        sv.cleanup()


# ---- cluster 2 ----

def outside(tmp, c2, ref):
    """scancel from outside, and a --time limit (the worker frozen until Slurm's limit comes)."""
    sv = slurm_service(tmp, c2, 'outside')
    stopped = []
    try:
        sv.start()
        write(os.path.join(sv.exp, 'sc.yaml'), slow('sc'))
        write(os.path.join(sv.exp, 'tl.yaml'), slow('tl', extra='slurm: {time: 1}\n'))
        sc, tl = run_id(sv, 'sc'), run_id(sv, 'tl')
        wait_until(lambda: len(sv.epochs(tl)) >= 2, 120, 'two epochs of the time-limited run')
        tl_job = current_job(sv, tl)
        pid = worker_pid(c2, tl_job)
        if pid:
            os.kill(pid, signal.SIGSTOP)  # no CPU spent while Slurm's clock runs
            stopped.append(pid)
        wait_until(lambda: len(sv.epochs(sc)) >= 2, 120, 'two epochs of the run to scancel')
        sc_job = current_job(sv, sc)
        c2.run('scancel', str(sc_job), check=True)
        wait_until(lambda: sv.status_of(sc) == 'done', 180, 'the scancelled run to resume and finish')
        # Slurm requeues the job itself (as for a preemption with PreemptMode=REQUEUE): same job id
        write(os.path.join(sv.exp, 'rq.yaml'), slow('rq'))
        rq = run_id(sv, 'rq')
        wait_until(lambda: len(sv.epochs(rq)) >= 2, 120, 'two epochs of the run Slurm requeues')
        rq_job = current_job(sv, rq)
        c2.run('scontrol', 'requeue', str(rq_job), check=True)
        wait_until(lambda: c2.job(rq_job).get('Restarts') == '1' and c2.job(rq_job).get('JobState') == 'PENDING', 60,
                   'the job to be pending again')
        wait_until(lambda: sv.status_of(rq) == 'queued', 30, 'the requeued run to wait again')
        # Slurm holds a requeued job for a while; release it at once, but only after slurmd has finished its
        # step and a new second has begun: slurmd refuses a launch whose credential dates from the second it
        # killed the job in ("Job N already killed, do not launch batch job"), a race real requeues never see
        wait_until(lambda: c2.log_count('slurmd.log', f'[{rq_job}.batch] done with job') >= 1, 60,
                   'slurmd to finish the requeued job\'s step')
        t_done = time.time()
        wait_until(lambda: time.time() >= int(t_done) + 2, 5, 'a later second')
        c2.run('scontrol', 'update', f'JobId={rq_job}', 'StartTime=now', check=True)
        wait_until(lambda: sv.status_of(rq) == 'done', 180, 'the requeued job to resume and finish')
        r = row(sv, rq, 'status, attempts, preemptions, error, slurm_job_id')
        js = sv.q('SELECT job_id, state, exit_code, restarts FROM slurm_jobs WHERE run_id = ?', (rq,))
        print('ROWS requeue:', r, js)
        check(r == ('done', 1, 1, None, rq_job), f'requeue: done by the same job, no attempt spent: {r}')
        check(js == [(rq_job, 'COMPLETED', '0:0', 1)], f'requeue: one job, restarted once: {js}')
        check(os.path.exists(os.path.join(sv.state, 'runs', str(rq), f'job-{rq_job}.1.out')),
              'requeue: the second worker wrote its own output file')
        same_epochs(sv, rq, ref, 'requeue')
        wait_until(lambda: len(jobs(sv, tl)) >= 2, 200, 'Slurm\'s time limit to interrupt the frozen run')
        wait_until(lambda: sv.status_of(tl) == 'done', 180, 'the time-limited run to resume and finish')
        for rid, job, state, what in ((sc, sc_job, 'CANCELLED', 'scancel'), (tl, tl_job, 'TIMEOUT', 'time limit')):
            r = row(sv, rid, 'status, attempts, preemptions, error')
            js = jobs(sv, rid)
            print(f'ROWS {what}:', r, js)
            check(r == ('done', 1, 1, None), f'{what}: done, no attempt spent, one preemption: {r}')
            check(len(js) == 2 and js[0][0] == job and js[0][1] == state and js[1][1] == 'COMPLETED',
                  f'{what}: job {job} {state}, then a second job COMPLETED: {js}')
            same_epochs(sv, rid, ref, what)
        text = sv.log_text()
        check('interrupted by scancel from outside the service' in text, 'the log names the outside scancel')
        check('interrupted by its time limit' in text, 'the log names the time limit')
        sv.stop()
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        sv.cleanup()


def crashes(tmp, c2, ref):
    # kill -9 of the service: the job runs on and is adopted
    sv = slurm_service(tmp, c2, 'crash')
    frozen = None
    try:
        sv.start()
        write(os.path.join(sv.exp, 'c.yaml'), slow('c'))
        rid = run_id(sv, 'c')
        wait_until(lambda: len(sv.epochs(rid)) >= 2, 120, 'two epochs')
        job = current_job(sv, rid)
        frozen = worker_pid(c2, job)
        if frozen:
            os.kill(frozen, signal.SIGSTOP)  # it must still run when the service comes back
        sv.kill9()
        check(c2.jobs().get(job, ('', ''))[1] == 'RUNNING', 'the job runs on without its service')
        sv.start()
        wait_until(lambda: f'adopting Slurm job {job}' in sv.log_text(), 60, 'the job to be adopted')
        if frozen:
            os.kill(frozen, signal.SIGCONT)
            frozen = None
        wait_until(lambda: sv.status_of(rid) == 'done', 180, 'the adopted run to finish')
        r = row(sv, rid, 'status, attempts, preemptions, slurm_job_id')
        js = jobs(sv, rid)
        print('ROWS crash:', r, js)
        check(r == ('done', 1, 0, job), f'crash: done by the same job, one attempt: {r}')
        check(len(js) == 1 and js[0][1] == 'COMPLETED', f'crash: no second job: {js}')
        check(list(jobs_named(c2, rid, 'c')) == [job], f'crash: Slurm knows one job of the run: {jobs_named(c2, rid, "c")}')
        same_epochs(sv, rid, ref, 'crash')
        sv.stop()
    finally:
        if frozen:
            os.kill(frozen, signal.SIGCONT)
        sv.cleanup()

    # kill -9 of the service and of the batch step: the end is read back, one retry
    sv = slurm_service(tmp, c2, 'crash-step')
    try:
        sv.start()
        write(os.path.join(sv.exp, 'k.yaml'), slow('k'))
        rid = run_id(sv, 'k')
        wait_until(lambda: len(sv.epochs(rid)) >= 2, 120, 'two epochs')
        job = current_job(sv, rid)
        pid = worker_pid(c2, job)
        sv.kill9()
        if pid:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: c2.jobs().get(job, ('', ''))[1] == 'FAILED', 60, 'Slurm to see the batch step killed')
        sv.start()
        wait_until(lambda: sv.status_of(rid) == 'done', 180, 'the run to be retried and finish')
        r = row(sv, rid, 'status, attempts, preemptions, error')
        js = jobs(sv, rid)
        print('ROWS crash+step:', r, js)
        check(r == ('done', 2, 0, None), f'crash+step: done on the second attempt: {r}')
        check(len(js) == 2 and js[0][0] == job and js[0][1] == 'FAILED' and js[0][2] == '0:9' and
              js[1][1] == 'COMPLETED', f'crash+step: the killed job (signal 9), then one more: {js}')
        check('attempt 1 of 3 failed: the worker was killed by signal 9' in sv.log_text(), 'the retry says why')
        no_live_job(c2, rid, 'k', 'crash+step')
        same_epochs(sv, rid, ref, 'crash+step')
        sv.stop()
    finally:
        sv.cleanup()

    # the service died after sbatch answered and before the job was recorded
    sv = slurm_service(tmp, c2, 'window')
    frozen = None
    try:
        sv.start()
        write(os.path.join(sv.exp, 'w.yaml'), slow('w'))
        rid = run_id(sv, 'w')
        wait_until(lambda: len(sv.epochs(rid)) >= 1, 120, 'an epoch')
        job = current_job(sv, rid)
        frozen = worker_pid(c2, job)
        if frozen:
            os.kill(frozen, signal.SIGSTOP)
        sv.kill9()
        change(sv, "UPDATE runs SET status = 'queued', attempts = 0, slurm_job_id = NULL, slurm_state = NULL"
               " WHERE id = ?", (rid,))
        change(sv, 'DELETE FROM slurm_jobs WHERE run_id = ?', (rid,))
        sv.start()
        wait_until(lambda: f'adopting Slurm job {job}' in sv.log_text(), 60, 'the unrecorded job to be adopted')
        if frozen:
            os.kill(frozen, signal.SIGCONT)
            frozen = None
        wait_until(lambda: sv.status_of(rid) == 'done', 180, 'the run to finish')
        js = jobs(sv, rid)
        print('ROWS window:', row(sv, rid, 'status, attempts, slurm_job_id'), js)
        check(len(js) == 1 and js[0][0] == job, f'window: the job found by its name, none submitted again: {js}')
        check(list(jobs_named(c2, rid, 'w')) == [job], f'window: Slurm knows one job of the run: {jobs_named(c2, rid, "w")}')
        same_epochs(sv, rid, ref, 'window')
        sv.stop()
    finally:
        if frozen:
            os.kill(frozen, signal.SIGCONT)
        sv.cleanup()


def stops(tmp, c2, ref):
    # three stops with on_stop: interrupt
    sv = slurm_service(tmp, c2, 'stops')
    try:
        sv.start()
        write(os.path.join(sv.exp, 's.yaml'), slow('s'))
        rid = run_id(sv, 's')
        seen = 0
        for k in range(3):
            wait_until(lambda: len(sv.epochs(rid)) > seen and sv.status_of(rid) == 'running', 120,
                       f'progress before stop {k + 1}')
            seen = len(sv.epochs(rid))
            rc = sv.stop()
            check(rc == 0, f'stop {k + 1}: exit status {rc}')
            r = row(sv, rid, 'status, attempts, preemptions')
            check(r == ('interrupted', 1, 0), f'stop {k + 1}: interrupted, no attempt spent: {r}')
            no_live_job(c2, rid, 's', f'stop {k + 1}')
            sv.start()
        wait_until(lambda: sv.status_of(rid) == 'done', 180, 'the run to finish after three stops')
        r = row(sv, rid, 'status, attempts, preemptions, error')
        js = jobs(sv, rid)
        print('ROWS stops:', r, js)
        check(r == ('done', 1, 0, None), f'three stops: done, one attempt, no preemption: {r}')
        check(len(js) == 4 and js[-1][1] == 'COMPLETED', f'four jobs, the last COMPLETED: {js}')
        same_epochs(sv, rid, ref, 'three stops')
        sv.stop()
    finally:
        sv.cleanup()

    # on_stop: leave
    sv = slurm_service(tmp, c2, 'leave', slurm='  on_stop: leave\n')
    try:
        sv.start()
        write(os.path.join(sv.exp, 'l.yaml'), slow('l'))
        rid = run_id(sv, 'l')
        wait_until(lambda: len(sv.epochs(rid)) >= 2, 120, 'two epochs')
        job = current_job(sv, rid)
        t0 = time.monotonic()
        rc = sv.stop()
        check(rc == 0, f'leave: exit status {rc}')
        r = row(sv, rid, 'status, slurm_job_id')
        check(r == ('running', job), f'leave: the run stays running with its job: {r}')
        state = c2.jobs().get(job, ('', ''))[1]
        check(state == 'RUNNING' or (state == 'COMPLETED' and time.monotonic() - t0 > 1),
              f'leave: the job ran on after the service stopped: {state}')
        sv.start()
        wait_until(lambda: sv.status_of(rid) == 'done', 180, 'the left job to be adopted and finish')
        r = row(sv, rid, 'status, attempts, preemptions')
        js = jobs(sv, rid)
        print('ROWS leave:', r, js)
        check(r == ('done', 1, 0), f'leave: done, one attempt: {r}')
        check(len(js) == 1 and js[0][0] == job, f'leave: one job: {js}')
        same_epochs(sv, rid, ref, 'leave')
        sv.stop()
    finally:
        sv.cleanup()


ONLY = set(filter(None, os.environ.get('EPOCHD_SLURM_TEST_ONLY', '').split(',')))  # e.g. outside,crashes


def guarded(fn, *args):
    if ONLY and fn.__name__ not in ONLY:
        return
    try:
        fn(*args)
    except Exception as e:  # a scenario's crash is a failure, not a hang of the others
        import traceback
        traceback.print_exc()
        check(False, f'{fn.__name__} raised {e!r}')


with tempdir() as tmp:
    t0 = time.monotonic()
    ref, _, _ = reference_epochs(tmp, 'slow', slow('slow'))
    check([r[0] for r in ref] == list(range(1, N + 1)), f'the reference has {N} epochs')
    c1 = slurm_cluster.Cluster(os.path.join(tmp, 'c1'), cpus=2, gpus=2)
    c2 = slurm_cluster.Cluster(os.path.join(tmp, 'c2'), cpus=8, gpus=0)
    c3 = slurm_cluster.Cluster(os.path.join(tmp, 'c3'), cpus=4, gpus=0, min_job_age=2)
    clusters = (c1, c2, c3)
    try:
        for c in clusters:
            c.start()
        print(f'three throwaway clusters up {time.monotonic() - t0:.1f} s after the start')
        # the scenarios that wait for Slurm's clocks (a time limit, forgetting jobs) run beside the others
        slow_ones = [threading.Thread(target=guarded, args=(outside, tmp, c2, ref)),
                     threading.Thread(target=guarded, args=(gone, tmp, c3))]
        for t in slow_ones:
            t.start()
        guarded(capacity, tmp, c1, ref)
        guarded(cap, tmp, c1)
        guarded(elsewhere, tmp, c1)
        guarded(controller, tmp, c1)
        guarded(crashes, tmp, c2, ref)
        guarded(stops, tmp, c2, ref)
        for t in slow_ones:
            t.join()
    finally:
        if __import__('serve_util').failures:
            for c in clusters:
                print(c.logs())
        for c in clusters:
            c.stop()
    print(f'MEASURE the whole Slurm test took {time.monotonic() - t0:.0f} s')
finish()
