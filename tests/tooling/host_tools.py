"""The host-tool table (hack/host-tools.tsv) and a static scan for the external commands the
code runs, so a test can hold the two against each other (issue 11: `nft` was run by
hack/oci-images but installed by nothing, and a fresh machine failed after 15 minutes).

The scan is pragmatic, not a shell or Python interpreter:
- Python (product, hack/ scripts, tests, bench): the AST. argv[0] of every call to run(),
  subprocess.run/Popen/check_output/call/check_call, `*.in_netns([...])`, and of a list given
  to `shutil.which(...)`; argv[0] may be a string literal, a module constant (`QEMU = "..."`,
  also imported ones such as `paths.SYSTEMCTL`) or a `Path(...)/"name"` of a known binaries
  directory (then it is a binaries-tool binary and checked by name).
- bash (hack/*, .ci/run, builder/data/*.sh): the first word of every simple command, after
  `;`, `|`, `&&`, `||`, `$(`, `(`, `{`, `then`/`do`/`else`, environment assignments and the
  wrappers `exec`, `nice -n N`, `timeout N`, `command`, `env`; heredoc bodies, comments and
  quoted strings are skipped, as are builtins, keywords and the script's own functions.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "hack" / "host-tools.tsv"
PY_TREES = ("kubeinit", "firstboot", "builder", "tests", "bench")
SUBPROCESS_CALLS = {"run", "Popen", "check_output", "check_call", "call", "in_netns", "sh"}
WHICH_CALLS = {"which", "tool"}  # shutil.which(NAME), the `tool(NAME)` fixture (tests/conftest)


@dataclass(frozen=True)
class Tool:
    name: str
    provider: str  # a Debian package, or binaries:<group> (hack/k8s-binaries)
    users: str


def load_table(path: Path = TABLE) -> dict[str, Tool]:
    out: dict[str, Tool] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        assert len(cols) == 3, f"{path}:{n}: want 3 tab-separated columns, got {cols}"
        assert cols[0] not in out, f"{path}:{n}: {cols[0]} listed twice"
        out[cols[0]] = Tool(*cols)
    return out


def debian_packages(table: dict[str, Tool]) -> set[str]:
    return {
        t.provider
        for t in table.values()
        if not t.provider.startswith("binaries:") and t.provider not in ("venv", "preinstalled")
    }


def shell_scripts() -> list[Path]:
    found = [REPO / ".ci" / "run", *sorted((REPO / "builder" / "data").glob("*.sh"))]
    for p in sorted((REPO / "hack").iterdir()):
        if p.is_file() and p.read_bytes()[:40].split(b"\n")[0].endswith(b"bash"):
            found.append(p)
    return found


def python_files() -> list[Path]:
    files = [p for top in PY_TREES for p in sorted((REPO / top).rglob("*.py"))]
    for p in sorted((REPO / "hack").iterdir()):
        if p.is_file() and b"python" in p.read_bytes()[:40].split(b"\n")[0]:
            files.append(p)
    return [p for p in files if "__pycache__" not in p.parts]


# --- Python ------------------------------------------------------------------------------------


def _constants(tree: ast.Module) -> dict[str, str]:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                for t in targets:
                    if isinstance(t, ast.Name):
                        out[t.id] = value.value
    return out


_MODULE_CONSTANTS: dict[str, dict[str, str]] = {}


def _module_constants(module: str) -> dict[str, str]:
    if module not in _MODULE_CONSTANTS:
        path = REPO / (module.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text()) if path.is_file() else ast.Module([], [])
        _MODULE_CONSTANTS[module] = _constants(tree)
    return _MODULE_CONSTANTS[module]


def _imports(tree: ast.Module) -> tuple[dict[str, str], dict[str, str]]:
    """(name -> constant value for `from m import NAME`, alias -> module for `from p import m`)."""
    names: dict[str, str] = {}
    modules: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                consts = _module_constants(node.module)
                if a.name in consts:
                    names[a.asname or a.name] = consts[a.name]
                elif (REPO / node.module.replace(".", "/") / f"{a.name}.py").is_file():
                    modules[a.asname or a.name] = f"{node.module}.{a.name}"
    return names, modules


def _func_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def python_commands(path: Path) -> Iterator[tuple[str, int]]:
    """(argv[0], line) of every external command `path` runs that the scan can resolve."""
    tree = ast.parse(path.read_text(), str(path))
    consts = _constants(tree)
    imported, modules = _imports(tree)
    # argv lists built first and passed by name: `argv = [QEMU, ...]; Popen(argv)` (any scope)
    lists: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.List):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name) and node.value.elts:
                    lists.setdefault(t.id, []).append(node.value.elts[0])

    def resolve(e: ast.expr) -> str | None:
        if isinstance(e, ast.Constant) and isinstance(e.value, str):
            return e.value
        if isinstance(e, ast.Name):
            return consts.get(e.id) or imported.get(e.id)
        if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name):
            mod = modules.get(e.value.id)
            return _module_constants(mod).get(e.attr) if mod else None
        if isinstance(e, ast.Call) and _func_name(e.func) == "str" and e.args:
            return resolve(e.args[0])
        if isinstance(e, ast.BinOp) and isinstance(e.op, ast.Div):  # bindir / "kubeadm"
            right = resolve(e.right)
            return f"*/{right}" if right else None
        return None

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = _func_name(node.func)
        first = node.args[0]
        if name in WHICH_CALLS:
            cmd = resolve(first)
        elif name in SUBPROCESS_CALLS and isinstance(first, ast.List | ast.Tuple) and first.elts:
            cmd = resolve(first.elts[0])
        elif name in SUBPROCESS_CALLS and isinstance(first, ast.Name) and first.id in lists:
            for head in lists[first.id]:
                if (c := resolve(head)) is not None:
                    yield c, node.lineno
            continue
        else:
            continue
        if cmd:
            yield cmd, node.lineno
    # host files a module copies or checks by path: module constants named *TOOLS
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id.endswith("TOOLS") for t in node.targets)
            and isinstance(node.value, ast.Tuple | ast.List)
        ):
            for e in node.value.elts:
                if isinstance(e, ast.Constant) and isinstance(e.value, str):
                    yield e.value, node.lineno


# --- bash -------------------------------------------------------------------------------------

SHELL_WORDS = {
    # keywords and builtins
    "if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
    "in", "function", "select", "time", "!", "{", "}", "[[", "]]", "[", "test", "echo", "printf",
    "read", "cd", "pwd", "exit", "return", "set", "unset", "export", "local", "declare",
    "readonly", "shift", "trap", "eval", "source", ".", "true", "false", ":", "wait", "kill",
    "exec", "command", "type", "hash", "break", "continue", "let", "shopt", "mapfile",
    "readarray", "getopts", "umask", "ulimit", "builtin", "alias", "pushd", "popd", "jobs",
    "disown", "compgen", "complete",
}
# wrappers whose argument is the real command: `nice -n 10 cmd`, `timeout 60 cmd`, `env X=1 cmd`
WRAPPERS = {"nice", "timeout", "env", "command", "exec", "time", "nohup", "setsid"}
_SEP = re.compile(r"\|\||&&|[;|&(){}`]|\$\(|\bthen\b|\bdo\b|\belse\b|\bif\b|\bwhile\b|\buntil\b|!")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")
_HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
_REDIRECT = re.compile(r"(?:\d*[<>]+&?|&>)\s*[^\s;|&()<>]*")
_ARITH = re.compile(r"\$?\(\((?:[^()]|\([^()]*\))*\)\)")
_ARRAY = re.compile(r"\b[A-Za-z_]\w*\+?=\([^)]*\)")
_ARRAY_OPEN = re.compile(r"\b[A-Za-z_]\w*\+?=\(\s*$")
_CASE_ARM = re.compile(r"^\s*\(?[^()\s;]+\)")


def _strip_quotes(line: str) -> str:
    """Blank out quoted strings (keeping `$(` inside double quotes, where commands run)."""
    out = []
    quote = ""
    stack: list[int] = []  # paren depth of each `$(` opened inside double quotes
    i = 0
    while i < len(line):
        c = line[i]
        if not quote and stack:
            if c == "(":
                stack[-1] += 1
            elif c == ")":
                if stack[-1] == 0:
                    stack.pop()
                    quote = '"'
                    out.append(";")
                    i += 1
                    continue
                stack[-1] -= 1
        if quote == "'":
            if c == "'":
                quote = ""
            out.append(" ")
        elif quote == '"':
            if c == "\\":
                out.append("  ")
                i += 2
                continue
            if c == '"':
                quote = ""
                out.append(" ")
            elif line.startswith("$(", i) and not line.startswith("$((", i):
                out.append(";")  # a command substitution: its commands are scanned
                stack.append(0)
                quote = ""
                i += 2
                continue
            else:
                out.append(" ")
        elif c in "'\"":
            quote = c
            out.append(" ")
        elif c == "#" and (i == 0 or line[i - 1] in " \t;"):
            break
        else:
            out.append(c)
        i += 1
    return "".join(out)


def shell_commands(path: Path) -> Iterator[tuple[str, int]]:
    text = path.read_text()
    functions = set(re.findall(r"^\s*(?:function\s+)?([\w-]+)\s*\(\)", text, re.M))
    heredoc = ""
    continued = in_array = False
    cases = 0
    for n, raw in enumerate(text.splitlines(), 1):
        if heredoc:
            if raw.strip() == heredoc:
                heredoc = ""
            continue
        if in_array:  # the body of a multi-line array: data, not commands
            in_array = ")" not in _strip_quotes(raw)
            continue
        if m := _HEREDOC.search(raw):
            heredoc = m.group(1)
        line = _REDIRECT.sub(" ", _ARRAY.sub(" ", _ARITH.sub(" ", _strip_quotes(raw))))
        if _ARRAY_OPEN.search(line):
            in_array = True
            line = _ARRAY_OPEN.sub(" ", line)
        if re.search(r"\bcase\b", line):
            cases += 1
            line = re.sub(r"\bin\b\s*[^()\s;]+\)", ";", line)  # `case x in pattern)`
        elif cases and _CASE_ARM.match(line):
            line = _CASE_ARM.sub(" ", line, count=1)
        if re.search(r"\besac\b", line):
            cases -= 1
        was_continued, continued = continued, line.rstrip().endswith("\\")
        if was_continued:  # an argument line of a command continued with a backslash
            continue
        for part in _SEP.split(line):
            words = part.split()
            # in `case` arms, `pattern)` ends with ")" which _SEP split off; skip `;;` leftovers
            while words and (_ASSIGN.match(words[0]) or words[0] in WRAPPERS):
                w = words.pop(0)
                if w in {"nice", "timeout"}:  # their numeric/option arguments
                    while words and (words[0].startswith("-") or words[0][:1].isdigit()):
                        words.pop(0)
                elif w == "env":
                    while words and (words[0].startswith("-") or _ASSIGN.match(words[0])):
                        words.pop(0)
            if not words:
                continue
            word = words[0]
            if (
                word in SHELL_WORDS
                or word in functions
                or not re.fullmatch(r"[A-Za-z0-9_][\w.+-]*|/[\w./+-]+", word)
                or word.endswith("=")
                or re.fullmatch(r"[\w.*|-]+\)?", word) is None
            ):
                continue
            if word.startswith("/"):
                word = word.rsplit("/", 1)[1]
            yield word, n
