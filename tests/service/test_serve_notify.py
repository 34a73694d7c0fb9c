#!/usr/bin/env python3
"""epochd serve under systemd-style supervision, played by this test: it
binds the Unix datagram socket of $NOTIFY_SOCKET (a path, then an abstract
name), sets $WATCHDOG_USEC, and checks what arrives: READY=1 once the first
scan is done, STATUS= lines with the queue and the running runs, WATCHDOG=1
at about half the watchdog interval, STOPPING=1 on SIGTERM - each sent by
the service's own pid (SO_PASSCRED), never by a worker. With $WATCHDOG_PID
naming another process no keep-alive is sent.

  test_serve_notify.py EPOCHD
"""
import os
import signal
import socket
import struct
import threading
import time

from serve_util import Service, check, finish, slow_spec, spec, tempdir, wait_until, write


class Listener:
    def __init__(self, address):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.msgs = []  # (time, pid, text)
        self.stop = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            pid = None
            for level, typ, d in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack('iII', d[:12])[0]
            self.msgs.append((time.monotonic(), pid, data.decode()))

    def texts(self):
        return [m[2] for m in self.msgs]

    def close(self):
        self.stop = True
        self.t.join()
        self.sock.close()


def run_case(tmp, address, env_socket):
    lst = Listener(address)
    sv = Service(tmp, settle_ms=100, env={'NOTIFY_SOCKET': env_socket, 'WATCHDOG_USEC': '1000000'})
    try:
        write(os.path.join(sv.exp, 'one.yaml'), slow_spec('one', epochs=3, seed=51))
        proc = sv.start()
        wait_until(lambda: 'READY=1' in lst.texts(), 30, 'READY=1')
        wait_until(lambda: any(t.startswith('STATUS=') and '1 running; run 1 one 1/3 epochs on cpu' in t
                               for t in lst.texts()), 60, 'a STATUS= with the running run')
        wait_until(lambda: sv.status_of(1) == 'done', 120, 'the run to finish')
        wait_until(lambda: 'STATUS=0 queued, 0 running' in lst.texts(), 30, 'a STATUS= with nothing running')
        time.sleep(2.0)
        t_sig = time.monotonic()
        rc = sv.stop()
        check(rc == 0, f'exit status {rc}')
        wait_until(lambda: 'STOPPING=1' in lst.texts(), 30, 'STOPPING=1 to arrive')
        msgs = list(lst.msgs)
        texts = [m[2] for m in msgs]
        check(all(m[1] == proc.pid for m in msgs), f'every message comes from the service itself: '
                                                   f'{set(m[1] for m in msgs)} vs {proc.pid}')
        ready = [m[0] for m in msgs if m[2] == 'READY=1']
        check(len(ready) == 1, f'READY=1 once: {len(ready)}')
        check('ready: watching' in sv.log_text(), 'the log says ready')
        check('STOPPING=1' in texts and all(m[0] >= t_sig for m in msgs if m[2] == 'STOPPING=1'),
              'STOPPING=1 after SIGTERM')
        wd = [m[0] for m in msgs if m[2] == 'WATCHDOG=1']
        span = (wd[-1] - wd[0]) if len(wd) > 1 else 0
        check(len(wd) >= 4, f'WATCHDOG=1 keeps coming: {len(wd)}')
        if len(wd) > 1:
            # the timer's period is what the service promises; single gaps on a
            # loaded machine also hold the scheduler's delays (of the service and
            # of this listener), which the median leaves out and MEASURE reports
            gaps = sorted(b - a for a, b in zip(wd, wd[1:]))
            median = gaps[len(gaps) // 2]
            check(0.4 <= median <= 0.75, f'a keep-alive about every half interval (0.5 s): median gap {median:.3f} s')
            check(len(wd) >= span / 0.5 / 2, f'keep-alives keep coming: {len(wd)} over {span:.1f} s')
            print(f'MEASURE WATCHDOG_USEC=1000000: {len(wd)} keep-alives over {span:.1f} s, '
                  f'median gap {median:.3f} s, longest {gaps[-1]:.3f} s')
        statuses = [t for t in texts if t.startswith('STATUS=')]
        check(any('queued' in s for s in statuses), f'STATUS= shows the queue: {statuses[:5]}')
        print('STATUS lines seen:', statuses[:6])
    finally:
        sv.cleanup()
        lst.close()


with tempdir() as tmp:
    path = os.path.join(tmp, 'notify.sock')
    os.makedirs(os.path.join(tmp, 'a'))
    run_case(os.path.join(tmp, 'a'), path, path)

with tempdir() as tmp:
    name = f'epochd-test-notify-{os.getpid()}'
    run_case(tmp, '\0' + name, '@' + name)

# WATCHDOG_PID of another process: the keep-alives are not ours to send
with tempdir() as tmp:
    path = os.path.join(tmp, 'n.sock')
    lst = Listener(path)
    sv = Service(tmp, settle_ms=100, env={'NOTIFY_SOCKET': path, 'WATCHDOG_USEC': '200000', 'WATCHDOG_PID': '1'})
    try:
        sv.start()
        wait_until(lambda: 'READY=1' in lst.texts(), 30, 'READY=1')
        time.sleep(0.8)
        check(sv.stop() == 0, 'exit 0')
        check('WATCHDOG=1' not in lst.texts(), 'no keep-alive for a watchdog meant for another pid')
    finally:
        sv.cleanup()
        lst.close()
finish()
