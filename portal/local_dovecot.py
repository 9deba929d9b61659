"""A mailbox of our own for the demo: Debian's dovecot (dovecot-imapd), unprivileged.

IMAPS on 127.0.0.1 with a certificate for "localhost" from a CA that openssl makes once
(``ca.pem`` is what client.ini's ``ca_file`` trusts, so TLS is verified as in production),
and one user whose mail the worker reads. Like the demo's clamd it exists for trying
things out only; production reads the print shop's real mailbox.

dovecot will not hand a mailbox to root and its login processes cannot chroot into our
directory, so the whole server runs as one unprivileged user (``nobody`` when started as
root), from a fresh temporary directory (short unix socket paths, readable by that user).
"""

from __future__ import annotations

import getpass
import grp
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Services that chroot by default (login processes); unprivileged they cannot.
_CHROOTED = ("imap-login", "imap-urlauth-login", "pop3-login", "submission-login")


def dovecot_binary() -> str | None:
    """Debian's dovecot; /usr/sbin is often not on a normal user's PATH."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
    return shutil.which("dovecot", path=search)


def usable() -> bool:
    """True when dovecot and openssl are installed (the demo then has a mailbox)."""
    return dovecot_binary() is not None and shutil.which("openssl") is not None


@dataclass(frozen=True)
class LocalDovecot:
    """The demo's dovecot: certificates kept in ``directory``, everything else in a temp dir."""

    directory: Path
    port: int
    user: str
    password: str

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def service_user(self) -> str:
        return "nobody" if os.geteuid() == 0 else getpass.getuser()

    def make_certificates(self) -> None:
        """A CA and a certificate for "localhost" signed by it (once; kept for later runs)."""
        if self.ca_file.exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        d = self.directory

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True)

        openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
            "-subj", "/CN=ptportal demo CA", "-keyout", str(d / "ca-key.pem"),
            "-out", str(d / "ca.pem"),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", str(d / "key.pem"), "-out", str(d / "request.pem"),
        )  # fmt: skip
        (d / "extensions.cnf").write_text(
            "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
        )
        openssl(
            "x509", "-req", "-in", str(d / "request.pem"), "-CA", str(d / "ca.pem"),
            "-CAkey", str(d / "ca-key.pem"), "-CAcreateserial", "-days", "3650",
            "-extfile", str(d / "extensions.cnf"), "-out", str(d / "cert.pem"),
        )  # fmt: skip

    def prepare(self) -> Path:
        """A fresh run directory with config, certificate and user; returns dovecot.conf."""
        self.make_certificates()
        run = Path(tempfile.mkdtemp(prefix="ptportal-demo-dovecot-"))
        for name in ("cert.pem", "key.pem"):
            shutil.copy(self.directory / name, run / name)
        (run / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        for sub in ("run", "state", "home"):
            (run / sub).mkdir()
        group = grp.getgrgid(pwd.getpwnam(self.service_user).pw_gid).gr_name
        chroots = "".join(f"service {name} {{\n  chroot =\n}}\n" for name in _CHROOTED)
        conf = run / "dovecot.conf"
        conf.write_text(
            f"""\
base_dir = {run}/run
state_dir = {run}/state
log_path = {run}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = {self.service_user}
default_internal_group = {group}
default_login_user = {self.service_user}
ssl = required
ssl_cert = <{run}/cert.pem
ssl_key = <{run}/key.pem
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {run}/users
}}
userdb {{
  driver = static
  args = uid={self.service_user} gid={group} home={run}/home/%u
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  mailbox Processed {{
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {self.port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
{chroots}"""
        )
        if os.geteuid() == 0:
            for path in [run, *run.rglob("*")]:
                shutil.chown(path, user=self.service_user, group=group)
        return conf

    def popen_options(self) -> dict[str, object]:
        """Popen arguments that run dovecot as the service user with only its own group."""
        if os.geteuid() != 0:
            return {}
        gid = pwd.getpwnam(self.service_user).pw_gid
        return {"user": self.service_user, "group": gid, "extra_groups": []}
