"""The Debian package (debian/): built with `dpkg-buildpackage -us -uc -b` from a clean copy of
the committed tree (`git archive HEAD`: what is not committed is not in it), checked by lintian,
extracted, and its contents run: the binary, its config, its systemd units (systemd-analyze) and
its shell completions, against a host started from the package."""
import os
import pathlib
import re
import shutil
import subprocess

import pytest

from conftest import ROOT
from hostlib import free_port, worker_command

VERSION = re.search(r"version : '([^']+)'", (ROOT / "meson.build").read_text()).group(1)

# The commands of `aerie supervisor` that SPEC.md adds in its second round: completion offers
# them whether or not this binary has them yet.
SECOND_ROUND_COMMANDS = {"reload", "stop", "start", "scale", "signal", "logs"}

# Internal options of `aerie supervisor-process`, which only the host passes.
INTERNAL_OPTIONS = {"host-pid", "socket-gid", "check-sandbox"}


def clean_env():
    """The environment without the calling make's job-server flags (make check runs this)."""
    env = dict(os.environ)
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(name, None)
    return env


def run(*args, timeout=60, **kwargs):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """The built package: {"deb", "changes", "root" (extracted)}."""
    for tool in ("dpkg-buildpackage", "lintian", "dh"):
        assert shutil.which(tool), f"{tool} is missing: make setup installs it"
    work = tmp_path_factory.mktemp("package")
    source = work / f"aerie-{VERSION}"
    source.mkdir()
    if run("git", "-C", str(ROOT), "rev-parse", "--verify", "HEAD").returncode == 0:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD"],
                                 capture_output=True, timeout=60, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True, timeout=60)
    else:  # a tree without git (a release tarball): the tree itself, without what was built
        shutil.copytree(ROOT, source, dirs_exist_ok=True, symlinks=True,
                        ignore=shutil.ignore_patterns("build", "build-*", "__pycache__", "out"))
    assert (source / "debian/rules").is_file(), "HEAD has no debian/: commit it first"
    # nocheck: make check runs the unit tests already; this also builds without cmocka's tests.
    env = dict(clean_env(), DEB_BUILD_OPTIONS="nocheck parallel=2")
    result = run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=source, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    arch = run("dpkg", "--print-architecture").stdout.strip()
    deb = work / f"aerie_{VERSION}_{arch}.deb"
    changes = work / f"aerie_{VERSION}_{arch}.changes"
    assert deb.is_file(), sorted(p.name for p in work.iterdir())
    assert changes.is_file(), sorted(p.name for p in work.iterdir())
    root = work / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=60)
    return {"deb": deb, "changes": changes, "root": root, "work": work}


def test_lintian_finds_no_error_and_every_warning_is_explained(package):
    result = run("lintian", "--fail-on", "error", str(package["changes"]), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    tags = re.findall(r"^([EW]): \S+: (\S+)", result.stdout, re.M)
    assert not [t for level, t in tags if level == "E"], result.stdout
    # A warning that stays must be named, with its reason, in a file of debian/.
    explained = "\n".join(p.read_text() for p in (ROOT / "debian").rglob("*") if p.is_file())
    unexplained = sorted({t for level, t in tags if level == "W" and t not in explained})
    assert not unexplained, result.stdout


def test_package_has_the_files_an_administrator_expects(package):
    info = run("dpkg-deb", "-f", str(package["deb"]), "Package", "Version").stdout
    assert info.split() == ["Package:", "aerie", "Version:", VERSION], info
    root = package["root"]
    for path, mode in [("usr/bin/aerie", 0o755),
                       ("usr/share/man/man1/aerie.1.gz", 0o644),
                       ("usr/share/man/man5/aerie.ini.5.gz", 0o644),
                       ("lib/systemd/system/aerie.service", 0o644),
                       ("lib/systemd/system/aerie@.service", 0o644),
                       ("etc/aerie/aerie.ini", 0o644),
                       ("usr/share/bash-completion/completions/aerie", 0o644),
                       ("usr/share/zsh/vendor-completions/_aerie", 0o644),
                       ("usr/share/doc/aerie/copyright", 0o644)]:
        assert (root / path).is_file(), path
        assert (root / path).stat().st_mode & 0o7777 == mode, path
    control = package["work"] / "control"
    subprocess.run(["dpkg-deb", "-e", str(package["deb"]), str(control)], check=True, timeout=60)
    assert (control / "conffiles").read_text().split() == ["/etc/aerie/aerie.ini"]


def test_packaged_binary_and_man_pages(package):
    binary = package["root"] / "usr/bin/aerie"
    result = run(str(binary), "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"aerie {VERSION}"
    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8")
    for page, name in [("man1/aerie.1.gz", "aerie(1)"), ("man5/aerie.ini.5.gz", "aerie.ini(5)")]:
        result = run("man", "--warnings", "-l", str(package["root"] / "usr/share/man" / page),
                     env=env)
        assert result.returncode == 0 and result.stderr == "", result.stderr
        assert result.stdout.startswith(name), result.stdout[:200]
        assert f"aerie {VERSION}" in result.stdout


def example_config(package, tmp_path, examples_dir):
    """The packaged aerie.ini with its commented example made active, and what must differ here
    replaced: the program (the example worker), the port, the directory and the socket."""
    text = (package["root"] / "etc/aerie/aerie.ini").read_text()
    # The example is the lines of settings commented out with ';' and no space after it.
    text = re.sub(r"^;(\[|[a-z_]+ = )", r"\1", text, flags=re.M)
    replace = {"supervisor": str(tmp_path / "supervisor.ipc"),
               "command": worker_command(examples_dir, "--status", "serving"),
               "listen": f"tcp:127.0.0.1:{free_port()}",
               "directory": str(tmp_path),
               "log": str(tmp_path / "aerie.log"),
               "socket_group": "root",
               "prometheus": f"127.0.0.1:{free_port()}"}
    for key, value in replace.items():
        text, n = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, flags=re.M)
        assert n == 1, f"the example has no line {key} = … (or several)"
    return text


def test_packaged_config_needs_a_service_and_its_example_runs(package, tmp_path, start_host,
                                                              examples_dir):
    binary = str(package["root"] / "usr/bin/aerie")
    config = package["root"] / "etc/aerie/aerie.ini"
    # As shipped (the unit is not enabled): refused, saying what to do, nothing started.
    result = run(binary, "host", str(config))
    assert result.returncode == 2, result.stderr
    assert f"{config}:" in result.stderr and "[service:NAME]" in result.stderr, result.stderr
    text = example_config(package, tmp_path, examples_dir)
    if run(binary, "check", "--help").returncode == 0:
        (tmp_path / "checked.ini").write_text(text)
        result = run(binary, "check", str(tmp_path / "checked.ini"))
        assert result.returncode == 0, result.stderr
    host = start_host(text, binary=binary)
    assert len(host.wait_ready("web", 4, timeout=30)) == 4


def verify_units(package, tmp_path):
    """The packaged units, with the packaged binary's path, where systemd-analyze finds them."""
    root = package["root"]
    units = tmp_path / "units"
    units.mkdir()
    for name in ("aerie.service", "aerie@.service"):
        text = (root / "lib/systemd/system" / name).read_text()
        (units / name).write_text(text.replace("/usr/bin/aerie", str(root / "usr/bin/aerie")))
    return units


def test_units_verify_and_score_as_the_readme_says(package, tmp_path):
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing: make setup installs it"
    units = verify_units(package, tmp_path)
    # man: the Documentation= pages, found in the package.
    env = dict(os.environ, MANPATH=str(package["root"] / "usr/share/man"))
    result = run("systemd-analyze", "verify", str(units / "aerie.service"),
                 str(units / "aerie@shop.service"), env=env)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    readme = (ROOT / "README.md").read_text()
    for unit in ("aerie.service", "aerie@shop.service"):
        result = run("systemd-analyze", "security", "--offline=true", unit, cwd=units)
        assert result.returncode == 0, result.stderr
        score = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+\.\d+)",
                          result.stdout).group(1)
        assert f"`systemd-analyze security` scores {score}" in readme, \
            f"README does not give {unit}'s score {score}"


def directives(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_template_unit_is_the_unit_for_other_configs(package):
    system = package["root"] / "lib/systemd/system"
    unit = directives((system / "aerie.service").read_text())
    template = directives((system / "aerie@.service").read_text())
    differ = {"Description=", "ExecStart=", "RuntimeDirectory=", "RuntimeDirectoryPreserve=",
              "ExecReload=/usr/bin/aerie check "}
    same = [d for d in unit if not d.startswith(tuple(differ))]
    assert [d for d in template if not d.startswith(tuple(differ))] == same
    assert "ExecStart=/usr/bin/aerie host /etc/aerie/%i.ini" in template
    # systemctl reload checks the file first: a broken one fails the reload, no SIGHUP.
    assert template[template.index("ExecReload=/usr/bin/aerie check /etc/aerie/%i.ini") + 1] \
        == "ExecReload=/bin/kill -HUP $MAINPID"
    assert unit[unit.index("ExecReload=/usr/bin/aerie check /etc/aerie/aerie.ini") + 1] \
        == "ExecReload=/bin/kill -HUP $MAINPID"
    assert "RuntimeDirectory=aerie/%i" in template
    assert "ExecStart=/usr/bin/aerie host /etc/aerie/aerie.ini" in unit
    assert "Type=notify" in unit and "RuntimeDirectory=aerie" in unit
    assert not any(d.startswith("NoNewPrivileges=") for d in unit)
    assert "supervisor = /run/aerie/supervisor.ipc" in (
        package["root"] / "etc/aerie/aerie.ini").read_text()


@pytest.fixture
def packaged_host(package, tmp_path, start_host, examples_dir):
    """A host started by the packaged binary: web (2 workers) and clock-1 (1)."""
    binary = str(package["root"] / "usr/bin/aerie")
    config = (f"[service:web]\ncommand = {worker_command(examples_dir)}\ncount = 2\n"
              f"ready = notify\n[service:clock-1]\ncommand = {worker_command(examples_dir)}\n")
    host = start_host(config, binary=binary)
    host.wait_ready("web", 2)
    host.wait_ready("clock-1", 1)
    return binary, host


def bash_complete(package, *words, cwd=None):
    """COMPREPLY of the packaged bash completion for the command line words (the last is the
    one being completed)."""
    script = package["root"] / "usr/share/bash-completion/completions/aerie"
    program = (f'source "{script}"\n'
               'COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))\n'
               'COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}\n'
               '_aerie\n'
               'printf "%s\\n" "${COMPREPLY[@]}"\n')
    result = run("bash", "--norc", "-c", program, "bash", *words, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return [w for w in result.stdout.split("\n") if w]


def test_bash_completion_asks_the_running_host_for_names(package, packaged_host):
    binary, host = packaged_host
    s = ("-s", str(host.socket))
    assert bash_complete(package, binary, "supervisor", *s, "stop", "") == ["web", "clock-1"]
    assert bash_complete(package, binary, "supervisor", *s, "restart", "--service", "cl") == \
        ["clock-1"]
    assert bash_complete(package, binary, "supervisor", *s, "scale", "w") == ["web"]
    assert bash_complete(package, binary, "supervisor", *s, "signal", "USR1", "web") == \
        ["web", "web.0", "web.1"]
    assert bash_complete(package, binary, "supervisor", *s, "logs", "") == \
        ["web", "web.0", "web.1", "clock-1", "clock-1.0"]
    # -s left out: supervisor.ipc in the current directory, as the client does.
    assert bash_complete(package, binary, "supervisor", "start", "",
                         cwd=host.directory) == ["web", "clock-1"]
    # No host there: nothing, at once, and no error.
    assert bash_complete(package, binary, "supervisor", "-s", str(host.directory / "none"),
                         "stop", "") == []
    # What the binary prints for completion is what status says.
    result = run(binary, "supervisor", *s, "status", "--names")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["web", "web.0", "web.1", "clock-1", "clock-1.0"]
    for other in (("status", "--json"), ("status", "--check"), ("metrics",)):
        result = run(binary, "supervisor", *s, *other, "--names")
        assert result.returncode == 2 and "--names goes with status" in result.stderr, other


def test_bash_completion_knows_commands_options_and_signals(package):
    binary = str(package["root"] / "usr/bin/aerie")
    top = bash_complete(package, binary, "")
    assert {"host", "supervisor", "metrics", "check", "--help", "--version"} <= set(top)
    commands = bash_complete(package, binary, "supervisor", "")
    # Every command `aerie supervisor --help` lists, and the second round's.
    listed = re.findall(r"^  ([a-z]+) ", run(binary, "supervisor", "--help").stdout, re.M)
    assert {"status", "metrics", "restart", "top"} <= set(listed)
    assert set(listed) | SECOND_ROUND_COMMANDS <= set(commands), commands
    assert bash_complete(package, binary, "supervisor", "restart", "--signal", "") == \
        ["HUP", "INT", "TERM"]
    signals = bash_complete(package, binary, "supervisor", "signal", "")
    assert {"HUP", "TERM", "USR1", "USR2", "KILL", "WINCH"} <= set(signals)
    assert bash_complete(package, binary, "supervisor", "signal", "US") == ["USR1", "USR2"]
    assert bash_complete(package, binary, "supervisor", "status", "--") == \
        ["--json", "--check", "--names", "--socket", "--config", "--timeout", "--owner", "--help"]
    # Every option of the command line's source is offered somewhere.
    script = (package["root"] / "usr/share/bash-completion/completions/aerie").read_text()
    options = set()
    for source in sorted((ROOT / "src/cli").glob("cmd_*.c")):
        options |= set(re.findall(r'\{"([a-z][a-z-]*)", (?:no|required|optional)_argument',
                                  source.read_text()))
    assert "names" in options
    missing = sorted(o for o in options - INTERNAL_OPTIONS if f"--{o}" not in script)
    assert not missing, f"the completion does not offer {missing}"
    # A config file for host and check.
    config = package["root"] / "etc/aerie/aerie.ini"
    assert bash_complete(package, binary, "host", str(config)[:-3]) == [str(config)]


def zsh_complete(package, *words):
    """What the packaged zsh completion adds for words (compadd and the _files family stubbed:
    they exist only inside zsh's completion widgets)."""
    script = package["root"] / "usr/share/zsh/vendor-completions/_aerie"
    program = ('compadd() { if [[ $1 == -a ]]; then shift; local a; '
               'for a; do print -rl -- "${(@P)a}"; done; '
               'else [[ $1 == -- ]] && shift; print -rl -- "$@"; fi }\n'
               '_files() { print -r -- "<files>" }\n_users() { }\n_pids() { }\n'
               '_message() { }\n'
               'words=("$@"); CURRENT=$#\n'
               f'source "{script}"\n')
    result = run("zsh", "-f", "-c", program, "zsh", *words)
    assert result.returncode == 0, result.stderr
    return [w for w in result.stdout.split("\n") if w]


def test_zsh_completion_asks_the_running_host_for_names(package, packaged_host):
    if not shutil.which("zsh"):
        pytest.fail("zsh is missing: make setup installs it")
    binary, host = packaged_host
    s = ("-s", str(host.socket))
    assert zsh_complete(package, binary, "supervisor", *s, "stop", "") == ["web", "clock-1"]
    assert zsh_complete(package, binary, "supervisor", *s, "signal", "HUP", "") == \
        ["web", "web.0", "web.1", "clock-1", "clock-1.0"]
    commands = zsh_complete(package, binary, "supervisor", "")
    assert {"status", "metrics", "restart", "top"} | SECOND_ROUND_COMMANDS <= set(commands)
    assert "USR1" in zsh_complete(package, binary, "supervisor", "signal", "")
    assert zsh_complete(package, binary, "host", "") == ["<files>"]
