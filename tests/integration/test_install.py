"""`make install PREFIX=/usr DESTDIR=...`: the binary, both man pages and the bash and zsh
completions land where a package expects them (where meson install puts them), the installed binary runs, and man(1) renders each page without a warning. The
pages must also name every command-line option and every config key the code accepts, so that
the documentation cannot fall behind the code unnoticed."""
import os
import re
import stat
import subprocess

import pytest

from conftest import ROOT

PAGES = {"aerie.1": "man1", "aerie.ini.5": "man5"}

# Internal options of `aerie supervisor-process`, which only the host passes.
INTERNAL_OPTIONS = {"host-pid", "socket-gid"}


def make_env():
    """The environment without the calling make's job-server flags (make check runs this)."""
    env = dict(os.environ)
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("destdir")
    result = subprocess.run(["make", "-C", str(ROOT), "install", "PREFIX=/usr", f"DESTDIR={root}"],
                            capture_output=True, text=True, timeout=600, env=make_env())
    assert result.returncode == 0, result.stdout + result.stderr
    return root


def test_completions_are_installed_where_the_shells_look(installed):
    bash = installed / "usr/share/bash-completion/completions/aerie"
    zsh = installed / "usr/share/zsh/vendor-completions/_aerie"
    for path in (bash, zsh):
        assert path.is_file(), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        text = path.read_text()
        # The word lists of completions/meson.build were put in: no @NAME@ is left.
        assert not re.search(r"@[A-Z_]+@", text), re.findall(r"@[A-Z_]+@", text)
        assert "status metrics restart reload stop start scale signal logs top" in text
    result = subprocess.run(["bash", "-n", str(bash)], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    assert "complete -F" in bash.read_text()
    assert zsh.read_text().startswith("#compdef aerie")


def render(page, width=80):
    """man -l's text of page; groff's warnings (on stderr) fail the test."""
    env = dict(os.environ, MANWIDTH=str(width), MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8")
    result = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True,
                            text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    return result.stdout


def words(text):
    """Text with line breaks at hyphens undone and white space collapsed, for searching."""
    return " ".join(re.sub(r"-\n\s*", "-", text).split())


def test_binary_is_installed_and_runs(installed):
    binary = installed / "usr/bin/aerie"
    assert binary.is_file()
    assert stat.S_IMODE(binary.stat().st_mode) == 0o755
    version = re.search(r"version : '([^']+)'", (ROOT / "meson.build").read_text()).group(1)
    result = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"aerie {version}"


@pytest.mark.parametrize("page", sorted(PAGES))
def test_man_page_is_installed_and_renders_without_warnings(installed, page):
    path = installed / "usr/share/man" / PAGES[page] / page
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    text = render(path)
    assert "warning" not in text.lower(), text
    name = page.rsplit(".", 1)[0]
    assert text.startswith(f"{name}({page.rsplit('.', 1)[1]})"), text[:200]
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO"):
        assert re.search(rf"^{section}$", text, re.M), f"{page}: no {section} section"
    # No hyphenation (groff marks its own hyphens as U+2010): identifiers such as ready_timeout
    # stay whole, so that a reader can search for them.
    assert "\u2010" not in text


def test_aerie_1_names_every_command_and_option(installed):
    text = words(render(installed / "usr/share/man/man1/aerie.1", width=200))
    options = set()
    for source in sorted((ROOT / "src/cli").glob("cmd_*.c")):
        options |= set(re.findall(r'\{"([a-z][a-z-]*)", (?:no|required|optional)_argument',
                                  source.read_text()))
    assert options, "no options found in src/cli/cmd_*.c"
    missing = sorted(f"--{o}" for o in options - INTERNAL_OPTIONS if f"--{o}" not in text)
    assert not missing, f"aerie(1) does not mention {missing}"
    commands = re.findall(r'^\s*\{"([a-z-]+)", cmd_', (ROOT / "src/cli/main.c").read_text(), re.M)
    assert "host" in commands
    missing = sorted(c for c in commands if f"aerie {c}" not in text)
    assert not missing, f"aerie(1) does not mention {missing}"
    for word in ("EXIT STATUS", "SIGNALS", "ENVIRONMENT", "FILES", "EXAMPLES",
                 "AERIE_SERVICE", "AERIE_WORKER", "AERIE_GENERATION", "NOTIFY_SOCKET",
                 "LISTEN_FDS", "SIGHUP", "SIGUSR1"):
        assert word in text, f"aerie(1) does not mention {word}"


def test_aerie_ini_5_names_every_config_key(installed):
    text = words(render(installed / "usr/share/man/man5/aerie.ini.5", width=200))
    keys = [k for source in sorted((ROOT / "src/config").glob("*.c"))
            for k in re.findall(r'\[KEY_[A-Z_]+\] = \{\s*"([a-z_]+)"', source.read_text())]
    assert len(keys) >= 15, keys
    missing = sorted(k for k in keys if f"{k} =" not in text)
    assert not missing, f"aerie.ini(5) does not document {missing}"
    for word in ("[host]", "[service:NAME]", "comment", "RELOADING"):
        assert word in text, f"aerie.ini(5) does not mention {word}"
