#!/usr/bin/python3
"""Runs a command against a fresh `vortex serve` process, as CTest runs the client tests.

    with_server.py VORTEX MODEL [SERVE ARGS...] -- COMMAND [ARGS...]

Starts `VORTEX serve --model MODEL --port 0 [SERVE ARGS...]` on 127.0.0.1, waits for its
"listening on http://HOST:PORT" line, runs COMMAND with VORTEX_BASE_URL (http://HOST:PORT),
VORTEX_SERVER_PID, VORTEX_BINARY and VORTEX_MODEL in its environment, then stops the server
with SIGTERM and checks that it exits 0. Exits with COMMAND's code (77 = skipped), or 1 when
the server misbehaved.
"""
import os
import re
import signal
import subprocess
import sys
import threading

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60


def main():
    if "--" not in sys.argv or sys.argv.index("--") < 3:
        sys.exit(__doc__)
    split = sys.argv.index("--")
    vortex, model, serve_args = sys.argv[1], sys.argv[2], sys.argv[3:split]
    command = sys.argv[split + 1:]
    server = subprocess.Popen(
        [vortex, "serve", "--model", model, "--host", "127.0.0.1", "--port", "0"] + serve_args,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = []
    ready = threading.Event()
    url = []

    def read_stderr():  # keeps draining, so the server never blocks on a full pipe
        for line in server.stderr:
            log.append(line)
            m = re.search(r"listening on (http://\S+)", line)
            if m and not ready.is_set():
                url.append(m.group(1))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    if not ready.wait(START_TIMEOUT_S) or not url:
        server.kill()
        server.wait()
        sys.exit("vortex serve did not start:\n" + "".join(log))
    env = dict(os.environ, VORTEX_BASE_URL=url[0], VORTEX_SERVER_PID=str(server.pid),
               VORTEX_BINARY=vortex, VORTEX_MODEL=model)
    try:
        code = subprocess.call(command, env=env)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server_code = server.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server_code = "killed after %d s" % STOP_TIMEOUT_S
        reader.join(5)
    if server_code != 0:
        print("vortex serve exited with %s after SIGTERM; its log:\n%s" % (server_code, "".join(log)),
              file=sys.stderr)
        sys.exit(1 if code in (0, 77) else code)
    sys.exit(code)


if __name__ == "__main__":
    main()
