"""The deployment files agree with the program: the example configuration
documents every option and passes `faqbot run --check`, the systemd unit is
valid and hardened, the Dockerfile builds in two stages and runs as a user.
Everything here takes a few seconds; nothing touches the network."""
import ctypes
import fnmatch
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

SOURCE = os.environ.get("FAQBOT_SOURCE") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
FAQBOT = os.path.abspath(os.environ.get("FAQBOT") or os.path.join(SOURCE, "build", "faqbot"))
DEPLOY = os.path.join(SOURCE, "deploy")
EXAMPLE = os.path.join(DEPLOY, "faqbot.example.json")
UNIT = os.path.join(DEPLOY, "faqbot.service")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
DOCKERIGNORE = os.path.join(DEPLOY, "Dockerfile.dockerignore")

# Where the unit's LoadCredential= puts the password, as the example names it.
CREDENTIAL = "/run/credentials/faqbot.service/matrix-password"


def run(args, **kw):
    kw.setdefault("timeout", 60)
    return subprocess.run(args, capture_output=True, text=True, **kw)


def option_names():
    """Every option name that `faqbot run --help-config` prints."""
    r = run([FAQBOT, "run", "--help-config"])
    assert r.returncode == 0, r.stderr
    names = [line.split(" ", 1)[0] for line in r.stdout.splitlines()
             if line and not line[0].isspace()]
    assert len(names) > 50, r.stdout  # the table, not an error message
    return names


def load_example():
    with open(EXAMPLE, encoding="utf-8") as f:
        return json.load(f)


def example_with_secret(tmp):
    """A copy of the example whose password_file is a real 0600 file in tmp:
    the only difference from the shipped file."""
    secret = os.path.join(tmp, "matrix-password")
    with open(secret, "w") as f:
        f.write("not-a-real-password\n")
    os.chmod(secret, 0o600)
    cfg = load_example()
    cfg["matrix"]["password_file"] = secret
    path = os.path.join(tmp, "faqbot.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
    return path


def unit_settings():
    """The unit as (section, key, value) triples, continuation lines joined."""
    out, section, pending = [], None, ""
    with open(UNIT, encoding="utf-8") as f:
        for raw in f:
            line = pending + raw.rstrip("\n")
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            if s.startswith("[") and s.endswith("]"):
                section = s[1:-1]
                continue
            k, _, v = s.partition("=")
            out.append((section, k.strip(), v.strip()))
    return out


def docker_instructions():
    """The Dockerfile as a list of stages, each a list of (INSTRUCTION, args)."""
    stages, cur, pending = [], None, ""
    with open(DOCKERFILE, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.lstrip().startswith("#"):
                continue  # comments may sit inside a continued instruction
            line = pending + line
            pending = ""
            if line.rstrip().endswith("\\"):
                pending = line.rstrip()[:-1] + " "
                continue
            s = line.strip()
            if not s:
                continue
            ins, _, args = s.partition(" ")
            ins = ins.upper()
            if ins == "FROM":
                cur = []
                stages.append(cur)
            assert cur is not None, f"{ins} before the first FROM"
            cur.append((ins, args.strip()))
    return stages


def apt_packages(stage):
    """The packages that a stage's RUN lines install with apt-get install."""
    pkgs = []
    for ins, args in stage:
        if ins != "RUN":
            continue
        for cmd in re.split(r"&&|;|\|\|", args):
            words = cmd.split()
            if "apt-get" in words and "install" in words:
                pkgs += [w for w in words[words.index("install") + 1:]
                         if not w.startswith("-")]
    return pkgs


class ExampleConfig(unittest.TestCase):
    def test_the_example_passes_the_check_when_its_secret_file_exists(self):
        with tempfile.TemporaryDirectory(prefix="faqbot-deploy-") as tmp:
            r = run([FAQBOT, "run", "-c", example_with_secret(tmp), "--check"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("configuration OK", r.stdout)
        self.assertNotRegex(r.stdout, r"(?m): error: ", r.stdout)

    def test_as_shipped_only_the_missing_credential_is_an_error(self):
        # The example names the file systemd's LoadCredential= provides; it
        # does not exist outside the service, and that must be the only error.
        self.assertEqual(load_example()["matrix"]["password_file"], CREDENTIAL)
        if os.path.exists(CREDENTIAL):
            self.skipTest(f"{CREDENTIAL} exists on this machine")
        r = run([FAQBOT, "run", "-c", EXAMPLE, "--check"])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        errors = [l for l in r.stdout.splitlines() if ": error: " in l]
        self.assertTrue(errors, r.stdout)
        for l in errors:
            self.assertTrue(CREDENTIAL in l or "password" in l, l)

    def test_no_secret_is_written_inline(self):
        cfg = load_example()
        self.assertEqual(cfg["matrix"]["password"], "")
        self.assertEqual(cfg["matrix"]["access_token"], "")
        self.assertEqual(cfg["irc"]["password"], "")

    def test_every_option_of_the_table_is_in_the_example_with_its_help(self):
        cfg = load_example()
        missing, no_help = [], []
        for name in option_names():
            *parents, leaf = name.split(".")
            node = cfg
            for p in parents:
                node = node.get(p) if isinstance(node, dict) else None
            if not isinstance(node, dict) or leaf not in node:
                missing.append(name)
            elif not (isinstance(node.get("_" + leaf), str) and node["_" + leaf].strip()):
                no_help.append(name)
        self.assertEqual(missing, [], "options missing from deploy/faqbot.example.json")
        self.assertEqual(no_help, [], "options without a \"_name\" help string")

    def test_every_help_key_names_an_option(self):
        names = set(option_names())
        sections = {n.rsplit(".", 1)[0] for n in names if "." in n}
        orphans = []

        def walk(node, prefix):
            for k, v in node.items():
                path = f"{prefix}.{k}" if prefix else k
                if k.startswith("_"):
                    target = f"{prefix}.{k[1:]}" if prefix else k[1:]
                    if target not in names:
                        orphans.append(path)
                elif path in sections and isinstance(v, dict):
                    walk(v, path)

        walk(load_example(), "")
        self.assertEqual(orphans, [], "help keys without an option of that name")

    def test_contacts_and_rooms_are_complete(self):
        cfg = load_example()
        en = cfg["contacts"]["en"]
        for k in ("emergency", "oncology", "crisis", "moderators", "verified"):
            self.assertTrue(en.get(k), k)
        # optional, but the example shows it and says what it is for
        self.assertTrue(en.get("crisis_text"), "crisis_text")
        self.assertIn("crisis_text", en["comment"])
        self.assertRegex(en["verified"], r"^\d{4}-\d{2}-\d{2}$")
        self.assertIn("verified", cfg["_contacts"])
        self.assertIn("region", cfg["_contacts"])
        rooms = cfg["rooms"]
        self.assertIn("default", rooms)
        self.assertTrue(any(r.get("answer") == "mention" for k, r in rooms.items()
                            if k != "default"), "an example room in mention mode")


class SystemdUnit(unittest.TestCase):
    REQUIRED = {
        "DynamicUser": "yes", "StateDirectory": "faqbot", "StateDirectoryMode": "0700",
        "ConfigurationDirectory": "faqbot", "ExecReload": "/bin/kill -HUP $MAINPID",
        "Restart": "on-failure", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "NoNewPrivileges": "yes",
        "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "ProtectClock": "yes",
        "ProtectHostname": "yes", "RestrictNamespaces": "yes", "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
        "SystemCallArchitectures": "native", "CapabilityBoundingSet": "", "UMask": "0077",
    }

    def service(self):
        d = {}
        for sec, k, v in unit_settings():
            if sec == "Service":
                d.setdefault(k, []).append(v)
        return d

    def test_hardening_directives(self):
        s = self.service()
        for k, v in self.REQUIRED.items():
            self.assertTrue(k in s, f"{k}= is missing")
            self.assertEqual(s[k][-1], v, k)
        for k in ("RestartSec", "MemoryMax", "TasksMax", "LoadCredential"):
            self.assertTrue(s.get(k) and s[k][-1], f"{k}= is missing")
        # The --check of ExecStartPre runs every example: a big set must not
        # meet systemd's default start timeout (90 s).
        self.assertRegex(s.get("TimeoutStartSec", [""])[-1], r"^\d+(min|s)?$")
        self.assertIn(s["MemoryDenyWriteExecute"][-1], ("yes", "no"))
        self.assertEqual(set(s["RestrictAddressFamilies"][-1].split()),
                         {"AF_INET", "AF_INET6", "AF_UNIX"})
        filters = s["SystemCallFilter"]
        self.assertIn("@system-service", filters[0].split())
        denied = {w for f in filters if f.startswith("~") for w in f[1:].split()}
        self.assertTrue({"@privileged", "@resources"} <= denied, filters)

    def test_commands_and_credential_match_the_example(self):
        s = self.service()
        self.assertEqual(s["ExecStartPre"][-1].split(),
                         ["/usr/bin/faqbot", "run", "-c", "/etc/faqbot/faqbot.json", "--check"])
        self.assertEqual(s["ExecStart"][-1].split(),
                         ["/usr/bin/faqbot", "run", "-c", "/etc/faqbot/faqbot.json"])
        # LoadCredential=ID:PATH lands in /run/credentials/faqbot.service/ID.
        ids = [v.split(":", 1)[0] for v in s["LoadCredential"]]
        self.assertIn(os.path.basename(CREDENTIAL), ids)
        self.assertEqual(os.path.dirname(CREDENTIAL), "/run/credentials/faqbot.service")

    def verifiable_copy(self, tmp):
        """The unit with the binary under test in place of /usr/bin/faqbot, since
        verify checks that every command exists."""
        with open(UNIT, encoding="utf-8") as f:
            text = f.read().replace("/usr/bin/faqbot", FAQBOT)
        path = os.path.join(tmp, "faqbot.service")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_systemd_analyze_verify(self):
        exe = shutil.which("systemd-analyze")
        if exe is None:
            self.skipTest("systemd-analyze is not installed (apt-get install systemd)")
        with tempfile.TemporaryDirectory(prefix="faqbot-unit-") as tmp:
            path = self.verifiable_copy(tmp)
            r = run([exe, "verify", path])
        # verify exits 0 on unknown keys and bad values, so its messages
        # about the unit count as failures too.
        ours = [l for l in (r.stdout + r.stderr).splitlines()
                if "faqbot.service" in l]
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(ours, [], r.stdout + r.stderr)

    def test_systemd_analyze_security_exposure_is_low(self):
        exe = shutil.which("systemd-analyze")
        if exe is None:
            self.skipTest("systemd-analyze is not installed (apt-get install systemd)")
        with tempfile.TemporaryDirectory(prefix="faqbot-unit-") as tmp:
            path = self.verifiable_copy(tmp)
            r = run([exe, "security", "--offline=true", "--no-pager", path])
        m = re.search(r"Overall exposure level for faqbot\.service: ([0-9.]+)", r.stdout)
        if r.returncode != 0 and m is None:
            self.skipTest("this systemd-analyze has no offline security analysis: "
                          + (r.stderr.strip().splitlines() or ["?"])[-1])
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)

    def test_pcre2_without_jit_gives_the_same_results(self):
        # MemoryDenyWriteExecute=yes makes PCRE2's JIT fail, so the patterns
        # run in the interpreter. The kernel's PR_SET_MDWE (Linux 6.3+) applies
        # the same rule to one process: every shipped example must still pass.
        s = self.service()
        if s.get("MemoryDenyWriteExecute", ["no"])[-1] != "yes":
            self.skipTest("the unit leaves MemoryDenyWriteExecute off")
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_mdwe, pr_mdwe_refuse_exec_gain = 65, 1

        def mdwe():
            if libc.prctl(pr_set_mdwe, pr_mdwe_refuse_exec_gain, 0, 0, 0) != 0:
                os._exit(77)

        args = [FAQBOT, "test", "--intents", os.path.join(SOURCE, "intents"),
                "--responses", os.path.join(SOURCE, "responses")]
        r = subprocess.run(args, capture_output=True, text=True, timeout=120,
                           preexec_fn=mdwe)
        if r.returncode == 77:
            self.skipTest("this kernel has no PR_SET_MDWE (Linux 6.3 or later)")
        plain = run(args, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        self.assertEqual(r.stdout, plain.stdout)


class Dockerfile(unittest.TestCase):
    def test_two_stages_and_a_user_that_is_not_root(self):
        stages = docker_instructions()
        self.assertEqual(len(stages), 2, "a build stage and a runtime stage")
        self.assertRegex(stages[0][0][1], r"^debian:bookworm-slim(@\S+)?\s+AS\s+\w+")
        self.assertRegex(stages[1][0][1], r"^debian:bookworm-slim\b")
        users = [a for i, a in stages[1] if i == "USER"]
        self.assertTrue(users, "the runtime stage sets USER")
        user = users[-1].split(":")[0]
        self.assertNotIn(user, ("root", "0"))

    def test_base_images_are_pinned_by_digest(self):
        # A tag moves; the digest says which image the build was checked with.
        for stage in docker_instructions():
            self.assertRegex(stage[0][1], r"^debian:bookworm-slim@sha256:[0-9a-f]{64}\b")
        digests = {stage[0][1].split()[0] for stage in docker_instructions()}
        self.assertEqual(len(digests), 1, "both stages on the same base image")

    def test_no_dev_package_in_the_runtime_stage(self):
        stages = docker_instructions()
        build, runtime = apt_packages(stages[0]), apt_packages(stages[1])
        self.assertTrue(any(p.endswith("-dev") for p in build), build)
        self.assertTrue(runtime, "the runtime stage installs its libraries")
        self.assertEqual([p for p in runtime if p.endswith("-dev")], [])
        for p in ("build-essential", "cmake", "pkg-config", "gcc"):
            self.assertNotIn(p, runtime)

    def test_entrypoint_state_and_signal(self):
        runtime = docker_instructions()[1]
        get = lambda ins: [a for i, a in runtime if i == ins]
        self.assertEqual(json.loads(get("ENTRYPOINT")[-1]),
                         ["/usr/bin/faqbot", "run", "-c", "/etc/faqbot/faqbot.json"])
        self.assertIn("/var/lib/faqbot", " ".join(get("VOLUME")))
        self.assertEqual(get("STOPSIGNAL")[-1], "SIGTERM")
        self.assertTrue(any("STATE_DIRECTORY=/var/lib/faqbot" in a for a in get("ENV")))

    def test_runtime_stage_has_every_library_the_binary_links(self):
        objdump, dpkg = shutil.which("objdump"), shutil.which("dpkg")
        if objdump is None or dpkg is None:
            self.skipTest("needs objdump and dpkg (a Debian machine with binutils)")
        needed = re.findall(r"NEEDED\s+(\S+)", run([objdump, "-p", FAQBOT]).stdout)
        self.assertTrue(needed)
        paths = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", FAQBOT]).stdout, re.M))
        runtime = set(apt_packages(docker_instructions()[1]))
        missing = []
        for lib in needed:
            # The sanitizer runtimes of a test build, and libc/libm/libgcc of
            # every Debian system, are not the image's to install.
            if re.match(r"lib(asan|ubsan|lsan|tsan|c|m|gcc_s|pthread|dl|rt)\.so", lib) \
                    or lib.startswith("ld-linux"):
                continue
            # dpkg knows /usr/lib/..., ldd may say /lib/... (merged /usr).
            r = run([dpkg, "-S", f"*/{os.path.basename(paths.get(lib, lib))}"])
            pkgs = {l.split(":", 1)[0] for l in r.stdout.splitlines() if ":" in l}
            if not pkgs & runtime:
                missing.append(f"{lib} ({', '.join(sorted(pkgs)) or 'no package found'})")
        self.assertEqual(missing, [], "libraries the runtime stage does not install")

    def test_the_context_keeps_what_the_build_needs(self):
        # The build context is the repository root; Dockerfile.dockerignore
        # must not leave out anything that the build stage reads.
        if not os.path.exists(DOCKERIGNORE):
            self.skipTest("no deploy/Dockerfile.dockerignore")
        with open(DOCKERIGNORE, encoding="utf-8") as f:
            pats = [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
        needed = ["CMakeLists.txt", "cmake/embed.cmake", "src/main.c", "src/transport/matrix.c",
                  "intents/lexicon.json", "responses/palliative.care.md",
                  "tests/bench/CMakeLists.txt", "deploy/faqbot.example.json",
                  "docs/deploy.md"]
        for path in needed:
            for p in pats:
                p = p.rstrip("/")
                parts = path.split("/")
                prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
                hit = any(fnmatch.fnmatch(x, p) or fnmatch.fnmatch(x, p.replace("**/", ""))
                          for x in prefixes)
                self.assertFalse(hit, f"{p!r} in the .dockerignore leaves out {path}")


if __name__ == "__main__":
    unittest.main()
