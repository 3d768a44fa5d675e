"""Shared pieces of the integration tests: start faqbot with a config in a
temporary directory, read its log, stop it; everything on 127.0.0.1 and every
wait bounded."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SOURCE = os.environ.get("FAQBOT_SOURCE") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
FAQBOT = os.environ.get("FAQBOT") or os.path.join(SOURCE, "build", "faqbot")
sys.path.insert(0, os.path.join(SOURCE, "tests", "homeserver"))


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Slow runs (valgrind) stretch every wait by this factor.
SCALE = float(os.environ.get("FAQBOT_TIMEOUT_SCALE", "1"))


def wait_until(pred, timeout, step=0.05, what="condition"):
    """Polls pred() until it is true or timeout seconds pass; returns its value."""
    timeout *= SCALE
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(step)


class Bot:
    """A faqbot process with its own config and state directory."""

    def __init__(self, config, workdir=None, env=None):
        self.dir = workdir or tempfile.mkdtemp(prefix="faqbot-it-")
        self.state = os.path.join(self.dir, "state")
        self.config = dict(config)
        self.config.setdefault("state_dir", self.state)
        self.config.setdefault("log", {"level": "debug"})
        # valgrind cannot follow the PCRE2 JIT's generated code (it reports
        # uninitialised reads there): under a wrapper the patterns run in
        # the interpreter, which gives the same answers.
        if os.environ.get("FAQBOT_WRAPPER"):
            self.config["match"] = dict(self.config.get("match", {}), jit=False)
        self.config_path = os.path.join(self.dir, "config.json")
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        self.proc = None
        self.lines = []
        self.lock = threading.Lock()
        self.reader = None

    def write_config(self):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        os.chmod(self.config_path, 0o600)

    def start(self):
        """Starts faqbot run; its stderr is collected line by line."""
        self.write_config()
        # FAQBOT_WRAPPER runs the bot under a tool, e.g. "valgrind --error-exitcode=99".
        wrapper = os.environ.get("FAQBOT_WRAPPER", "").split()
        self.proc = subprocess.Popen(wrapper + [FAQBOT, "run", "-c", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=self.env, text=True,
                                     errors="replace")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))
            if os.environ.get("FAQBOT_IT_VERBOSE"):
                sys.stderr.write("  bot| " + line)

    def log(self):
        with self.lock:
            return list(self.lines)

    def wait_log(self, needle, timeout=15, start=0):
        """Waits for a log line containing needle (after line index start)."""
        def found():
            for i, l in enumerate(self.log()[start:], start):
                if needle in l:
                    return i + 1
            return None
        return wait_until(found, timeout, what=f"log line {needle!r}")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops the bot; returns (exit status, seconds it took)."""
        if self.proc is None or self.proc.poll() is not None:
            return (self.proc.returncode if self.proc else None, 0.0)
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout * SCALE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        took = time.monotonic() - t0
        if self.reader:
            self.reader.join(5)
        self.proc.stdout.close()
        return rc, took

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        if self.reader:
            self.reader.join(5)
        self.proc.stdout.close()

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc and not self.proc.stdout.closed:
            if self.reader:
                self.reader.join(5)
            self.proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def sanitizer_errors(self):
        """Lines where AddressSanitizer, LeakSanitizer, UBSan or valgrind complained."""
        bad = []
        for l in self.log():
            if "Sanitizer" in l or "runtime error:" in l:
                bad.append(l)
            elif "ERROR SUMMARY:" in l and "ERROR SUMMARY: 0 errors" not in l:
                bad.append(l)
            elif "definitely lost:" in l and "definitely lost: 0 bytes" not in l:
                bad.append(l)
        return bad
