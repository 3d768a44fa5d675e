"""A real IRC network for the integration tests, on 127.0.0.1 only: InspIRCd
(Debian's inspircd) with TLS from a self-signed certificate made with the
openssl command, and Atheme (Debian's atheme-services) linked to it as the
services that check SASL PLAIN logins. Plus a small IRC client for the
people in the tests. Every wait is bounded; everything started here is
stopped by its owner."""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

INSPIRCD = shutil.which("inspircd") or "/usr/sbin/inspircd"
ATHEME = shutil.which("atheme-services") or "/usr/sbin/atheme-services"
MODULES = "/usr/lib/inspircd/modules"
ATHEME_MODULES = "/usr/lib/x86_64-linux-gnu/atheme/modules"
SERVER_NAME = "irc.faqbot.test"
SERVICES_NAME = "services.faqbot.test"
LINK_PASS = "linkpass-for-tests"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def have_servers():
    """Why the IRC servers cannot run here, or None when they can."""
    for path, pkg in ((INSPIRCD, "inspircd"), (ATHEME, "atheme-services")):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: install the {pkg} package (scripts/deps.sh --test)"
    if not shutil.which("openssl"):
        return "the openssl command is missing"
    return None


def make_cert(directory):
    """A self-signed certificate for localhost and 127.0.0.1; returns (cert, key)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", key, "-out", cert,
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    return cert, key


def wait_port(port, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


INSPIRCD_CONF = """
<server name="{server}" description="faqbot test server" network="FaqTest" id="0AA">
<admin name="test" nick="test" email="test@localhost">
<bind address="127.0.0.1" port="{port}" type="clients" sslprofile="tls">
<bind address="127.0.0.1" port="{plainport}" type="clients">
<bind address="127.0.0.1" port="{linkport}" type="servers">
<path moduledir="{modules}" configdir="{dir}" datadir="{dir}" logdir="{dir}">
<module name="ssl_gnutls">
<sslprofile name="tls" provider="gnutls" certfile="{cert}" keyfile="{key}"
            dhfile="" hash="sha256" requestclientcert="no">
<module name="cap">
<module name="sasl">
<module name="services_account">
<module name="spanningtree">
<module name="namesx">
<sasl target="{services}" requiressl="no">
<uline server="{services}" silent="yes">
<link name="{services}" ipaddr="127.0.0.1" port="{linkport}" allowmask="127.0.0.0/8"
      timeout="30" sendpass="{linkpass}" recvpass="{linkpass}">
<connect allow="*" timeout="60" threshold="1000" pingfreq="120" hardsendq="1048576"
         softsendq="65536" recvq="16384" commandrate="1000" fakelag="yes" localmax="100"
         globalmax="100" resolvehostnames="no" useident="no" limit="1000" modes="">
<files motd="{dir}/motd.txt">
<pid file="{dir}/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{dir}/ircd.log">
<options prefixquit="Quit: " syntaxhints="no" announcets="yes" hostintopic="yes"
         pingwarning="15" exemptchanops="">
<security hideserver="" userstats="Pu" customversion="" flatlinks="no" hidesplits="no"
          hideulines="no" hidebans="no" maxtargets="20">
<performance quietbursts="yes" softlimit="1024" somaxconn="128" netbuffersize="10240"
             nouserdns="yes">
<dns server="127.0.0.1" timeout="1">
<limits maxnick="{maxnick}" maxchan="64" maxmodes="20" maxident="11" maxhost="64" maxquit="255"
        maxtopic="307" maxkick="255" maxreal="128" maxgecos="128" maxaway="200">
"""

ATHEME_CONF = """
loadmodule "{mods}/protocol/inspircd";
loadmodule "{mods}/backend/opensex";
loadmodule "{mods}/crypto/pbkdf2v2";
loadmodule "{mods}/nickserv/main";
loadmodule "{mods}/nickserv/register";
loadmodule "{mods}/nickserv/identify";
loadmodule "{mods}/saslserv/main";
loadmodule "{mods}/saslserv/plain";
serverinfo {{
	name = "{services}";
	desc = "faqbot test services";
	numeric = "0AB";
	recontime = 1;
	netname = "FaqTest";
	hidehostsuffix = "users.faqbot.test";
	adminname = "test";
	adminemail = "test@localhost";
	registeremail = "test@localhost";
	mta = "/bin/true";
	loglevel = {{ error; info; admin; network; }};
	maxlogins = 5;
	maxusers = 5;
	mdlimit = 30;
	emaillimit = 10;
	emailtime = 300;
	auth = none;
	casemapping = rfc1459;
}};
uplink "{server}" {{
	host = "127.0.0.1";
	send_password = "{linkpass}";
	receive_password = "{linkpass}";
	port = {linkport};
}};
nickserv {{
	nick = "NickServ";
	user = "NickServ";
	host = "{services}";
	real = "Nickname Services";
	maxnicks = 5;
	expire = 30;
}};
saslserv {{
	nick = "SaslServ";
	user = "SaslServ";
	host = "{services}";
	real = "SASL Authentication Agent";
}};
general {{
	helpchan = "#help";
	helpurl = "";
	verbose_wallops;
	join_chans;
	leave_chans;
	uflags = {{ hidemail; }};
	cflags = {{ verbose; guard; }};
	flood_msgs = 100;
	flood_time = 10;
	ratelimit_uses = 100;
	ratelimit_period = 1;
	vhost_change = 0;
	kline_time = 7;
	commit_interval = 1;
	default_clone_allowed = 100;
	default_clone_warn = 100;
	uplink_sendq_limit = 1048576;
	language = "en";
	exempts {{ }};
}};
database {{
	file = "{dir}/services.db";
}};
"""


class IrcNetwork:
    """InspIRCd on a TLS port (and a plain one for diagnostics), optionally with
    Atheme linked, and nicks of at most maxnick characters (InspIRCd refuses a
    longer NICK with 432, as ngircd does over its default of 9). start()/stop()
    may be called again: the ports stay."""

    def __init__(self, services=False, maxnick=30):
        self.dir = tempfile.mkdtemp(prefix="faqbot-irc-")
        self.port = free_port()
        self.plainport = free_port()
        self.linkport = free_port()
        self.cert, self.key = make_cert(self.dir)
        self.services = services
        self.ircd = None
        self.atheme = None
        with open(os.path.join(self.dir, "motd.txt"), "w") as f:
            f.write("faqbot test server\n")
        conf = INSPIRCD_CONF.format(
            server=SERVER_NAME, services=SERVICES_NAME, port=self.port,
            plainport=self.plainport, linkport=self.linkport, modules=MODULES, dir=self.dir,
            cert=self.cert, key=self.key, linkpass=LINK_PASS, maxnick=maxnick)
        self.conf = os.path.join(self.dir, "inspircd.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        if services:
            self.atheme_dir = os.path.join(self.dir, "atheme")
            os.makedirs(self.atheme_dir)
            self.atheme_conf = os.path.join(self.atheme_dir, "atheme.conf")
            with open(self.atheme_conf, "w") as f:
                f.write(ATHEME_CONF.format(
                    mods=ATHEME_MODULES, services=SERVICES_NAME, server=SERVER_NAME,
                    linkpass=LINK_PASS, linkport=self.linkport, dir=self.atheme_dir))

    def start(self, timeout=20):
        self.ircd_out = open(os.path.join(self.dir, "ircd.out"), "ab")
        self.ircd = subprocess.Popen(
            [INSPIRCD, "--config", self.conf, "--nofork", "--runasroot"],
            stdin=subprocess.DEVNULL, stdout=self.ircd_out, stderr=subprocess.STDOUT,
            cwd=self.dir)
        if not wait_port(self.port, timeout):
            self.stop()
            raise RuntimeError("inspircd did not start: " + self.output())
        if self.services and self.atheme is None:
            self.atheme_out = open(os.path.join(self.atheme_dir, "atheme.out"), "ab")
            self.atheme = subprocess.Popen(
                [ATHEME, "-n", "-c", self.atheme_conf, "-D", self.atheme_dir,
                 "-l", os.path.join(self.atheme_dir, "atheme.log"),
                 "-p", os.path.join(self.atheme_dir, "atheme.pid")],
                stdin=subprocess.DEVNULL, stdout=self.atheme_out, stderr=subprocess.STDOUT,
                cwd=self.atheme_dir)
            self.wait_services(timeout)
        return self

    def wait_services(self, timeout):
        """Waits until NickServ answers on the network."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with Client(self, "probe%d" % os.getpid(), tls=False) as c:
                    c.send("PRIVMSG NickServ :HELP")
                    if c.wait_for(lambda m: m.command == "NOTICE" and m.nick == "NickServ",
                                  timeout=2, fail=False):
                        return
            except (OSError, AssertionError):
                pass
            time.sleep(0.3)
        raise RuntimeError("atheme did not link to inspircd: " + self.output())

    def register_account(self, account, password, timeout=10):
        """Registers an account with NickServ (the way a person would)."""
        with Client(self, account, tls=False) as c:
            c.send(f"PRIVMSG NickServ :REGISTER {password} {account}@example.org")
            c.wait_for(lambda m: m.command == "NOTICE" and m.nick == "NickServ" and
                       "registered" in m.params[-1], timeout=timeout,
                       what="NickServ to register the account")

    def output(self):
        out = []
        for name in ("ircd.out", "ircd.log", "atheme/atheme.out"):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out.append(f"--- {name}\n" + f.read()[-3000:])
            except OSError:
                pass
        return "\n".join(out)

    def stop(self):
        """Stops the IRC server (the services stay, and link again after start())."""
        if self.ircd and self.ircd.poll() is None:
            self.ircd.terminate()
            try:
                self.ircd.wait(10)
            except subprocess.TimeoutExpired:
                self.ircd.kill()
                self.ircd.wait()
        self.ircd = None
        if getattr(self, "ircd_out", None):
            self.ircd_out.close()
            self.ircd_out = None

    def close(self):
        self.stop()
        if self.atheme and self.atheme.poll() is None:
            self.atheme.terminate()
            try:
                self.atheme.wait(10)
            except subprocess.TimeoutExpired:
                self.atheme.kill()
                self.atheme.wait()
        self.atheme = None
        if getattr(self, "atheme_out", None):
            self.atheme_out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Msg:
    """One line as received: its raw bytes (CR LF stripped) and its parts."""

    def __init__(self, raw):
        self.raw = raw
        line = raw.decode("utf-8", errors="replace")
        self.prefix = None
        if line.startswith("@"):
            line = line.split(" ", 1)[1] if " " in line else ""
        if line.startswith(":"):
            self.prefix, _, line = line[1:].partition(" ")
        trailing = None
        if " :" in line:
            line, trailing = line.split(" :", 1)
        parts = line.split()
        self.command = parts[0].upper() if parts else ""
        self.params = parts[1:] + ([trailing] if trailing is not None else [])
        self.nick = (self.prefix or "").split("!")[0]

    def __repr__(self):
        return f"Msg({self.raw!r})"


class Client:
    """A person on IRC: registers, joins, talks, and records what it gets."""

    def __init__(self, net, nick, tls=True, timeout=10):
        self.net = net
        self.nick = nick
        raw = socket.create_connection(("127.0.0.1", net.port if tls else net.plainport),
                                       timeout=timeout)
        if tls:
            ctx = ssl.create_default_context(cafile=net.cert)
            self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        else:
            self.sock = raw
        self.buf = b""
        self.seen = []
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :test person")
        self.wait_for(lambda m: m.command == "001", timeout=timeout, what="registration")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, line):
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def _read_line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            if not data:
                raise ConnectionError("the server closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line[:-1] if line.endswith(b"\r") else line

    def poll(self, timeout=0.2):
        """Reads lines for up to timeout seconds; answers PINGs; returns them."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            raw = self._read_line(deadline)
            if raw is None:
                return got
            m = Msg(raw)
            if m.command == "PING":
                self.send("PONG :" + (m.params[-1] if m.params else ""))
            self.seen.append(m)
            got.append(m)

    def drain(self, timeout=0.3):
        """Reads and forgets whatever has arrived."""
        self.poll(timeout)
        self.seen.clear()

    def wait_for(self, pred, timeout=15, what="a line", fail=True):
        """Waits for a line matching pred (also among those already seen but not consumed)."""
        deadline = time.monotonic() + timeout
        for i, m in enumerate(self.seen):
            if pred(m):
                del self.seen[:i + 1]
                return m
        self.seen.clear()
        while True:
            raw = self._read_line(deadline)
            if raw is None:
                if fail:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
                return None
            m = Msg(raw)
            if m.command == "PING":
                self.send("PONG :" + (m.params[-1] if m.params else ""))
            if pred(m):
                return m

    def join(self, channel, key=None):
        self.send(f"JOIN {channel}" + (f" {key}" if key else ""))
        self.wait_for(lambda m: m.command == "366" and m.params[1].lower() == channel.lower(),
                      what=f"joining {channel}")

    def names(self, channel, timeout=5):
        self.send(f"NAMES {channel}")
        names = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.wait_for(lambda m: m.command in ("353", "366"),
                              timeout=max(0.1, deadline - time.monotonic()), what="NAMES")
            if m.command == "366":
                return names
            names += [n.lstrip("~&@%+") for n in m.params[-1].split()]

    def say(self, target, text):
        self.send(f"PRIVMSG {target} :{text}")

    def collect_from(self, nick, quiet=1.0, timeout=30, first_timeout=20):
        """Lines sent by nick: waits for the first, then until quiet seconds pass
        without another one (or timeout)."""
        got = []
        first = self.wait_for(lambda m: m.nick.lower() == nick.lower() and
                              m.command in ("NOTICE", "PRIVMSG"),
                              timeout=first_timeout, what=f"a message from {nick}")
        got.append(first)
        end = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < end and time.monotonic() - last < quiet:
            for m in self.poll(0.2):
                if m.nick.lower() == nick.lower() and m.command in ("NOTICE", "PRIVMSG"):
                    got.append(m)
                    last = time.monotonic()
        self.seen.clear()
        return got

    def close(self):
        try:
            self.send("QUIT :bye")
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
