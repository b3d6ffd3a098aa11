#!/usr/bin/env python3
"""Generates docs/api.md, cellflow's API reference, from the headers' comments.

    python3 scripts/gen_api_docs.py                 rewrite docs/api.md
    python3 scripts/gen_api_docs.py --check         exit 1 (and show a diff) if docs/api.md differs
    python3 scripts/gen_api_docs.py --undocumented  list the public names that have no /// comment
    python3 scripts/gen_api_docs.py --stdout        print the reference instead of writing it

Python 3 standard library only. The ctest `docs_api_up_to_date` runs `--check`, so after changing
a header's public declarations or their comments, run this script and commit docs/api.md.

What it reads, for every include/cellflow/**/*.hpp outside include/cellflow/detail/:
* the file's leading comment (before `#pragma once`): the header's description;
* every declaration in namespace cellflow and its sub-namespaces, except namespaces named
  `detail` and unnamed ones: classes, structs, enums, functions, aliases, constants; and the
  public members of those classes (public bases declared in a `detail` namespace of the same
  header are listed too, as they are the class's API);
* the `///` comment lines right before a declaration, and `///<` comments after a member on the
  same line; `// ---- title ----` comments, which start a group;
* `#define CELLFLOW_...` macros.

Groups. A `// ---- title ----` comment starts a group in its scope (a namespace or a class): the
declarations after it belong to it until the next group comment, the end of the scope or, in a
class, the next access specifier; `// ---- end of ... ----` ends a group without starting one.
A group whose title starts with "cell contract" or "internal" holds names a user does not need
(the cell contract of cells/cell_traits.hpp: step and sequence functions, tapes, SequenceArgs,
Gradients, the state operations; and library plumbing). docs/api.md keeps them apart from the
user API:
* such members of a class are listed after all its user members (its own, then those inherited
  from a detail base), under "Cell contract" or "Internal", one sub-list per group;
* such declarations of a namespace are left out of their header's section (which names them in a
  closing line) and shown in the last part of the file, "Cell contract and internal
  declarations", header by header.
Every other group is shown in place, titled by its comment.

`--undocumented` lists every name docs/api.md shows without a comment: public declarations, their
members, and the public members of the detail bases it lists with a class, user API and cell
contract alike.

It is a small brace-aware scanner, not a C++ parser: it relies on the headers being formatted the
way cellflow's are (one declaration per statement, clang-format style).
"""

import difflib
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = os.path.join(ROOT, "include")
OUTPUT = os.path.join(ROOT, "docs", "api.md")
DIR_ORDER = ["", "model", "core", "cells", "rnn", "layers", "losses", "metrics", "optimizers", "train", "io", "convert", "data"]
SECTION = re.compile(r"^//\s*-{3,}\s*(.*?)\s*-{3,}\s*$")
END_OF_GROUP = re.compile(r"^end of\b", re.I)  # '// ---- end of cell contract ----' closes a group
CONTRACT = re.compile(r"^(cell contract|internal)s?\b\s*:?\s*", re.I)  # groups shown apart from the user API
CONTRACT_TITLE = "Cell contract and internal declarations"
CONTRACT_NOTE = {
    "cell contract": "for writing cells and for the library; not needed to use a cell",
    "internal": "library plumbing; not needed to use the class",
}
ACCESS = re.compile(r"^(public|private|protected)\s*$")


class Decl:
    def __init__(self, kind, name, signature, doc, scope, line):
        self.kind = kind            # class, enum, function, alias, variable, macro, nested class
        self.name = name
        self.signature = signature
        self.doc = doc              # list of comment lines
        self.scope = scope          # "cellflow", "cellflow::convert", ...
        self.line = line
        self.members = []           # (section, Decl) for classes
        self.bases = []
        self.hidden = False         # declared in a detail namespace (used only as a base)
        self.section = None


class Scope:
    def __init__(self, kind, name, visible, access=None, decl=None):
        self.kind = kind            # namespace, class
        self.name = name
        self.visible = visible
        self.access = access
        self.decl = decl
        self.section = None


def normalize(text):
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s*([(\[])\s*", r"\1", text)
    text = re.sub(r"\s*\)", ")", text)
    text = re.sub(r"\(\s+", "(", text)
    text = text.replace("( ", "(").replace(" ,", ",")
    text = re.sub(r"\btemplate\s*<", "template <", text)
    text = re.sub(r"\b(operator)\s*\(\)\s*\(", r"\1()(", text)
    return text


def top_level_colon_init(sig):
    """Cuts a constructor's member-initializer list: 'X(int a) : a_(a)' -> 'X(int a)'."""
    depth = 0
    k = 0
    while k < len(sig):
        c = sig[k]
        if c in "(<[":
            depth += 1
        elif c in ")>]":
            depth -= 1
        elif c == ":" and depth == 0:
            if sig[k:k + 2] == "::":
                k += 2
                continue
            if k > 0 and sig[k - 1] == ":":
                k += 1
                continue
            before = sig[:k].rstrip()
            if before.endswith(")") or re.search(r"\)\s*(noexcept|const)\s*$", before):
                return before
        k += 1
    return sig


def split_top_level(text):
    """Splits at the commas outside <>, () and []: 'A<T, U>, B' -> ['A<T, U>', 'B']."""
    parts, depth, start = [], 0, 0
    for k, c in enumerate(text):
        if c in "<([":
            depth += 1
        elif c in ">)]":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:k].strip())
            start = k + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def decl_name(sig, kind):
    s = re.sub(r"^template\s*<.*?>\s*(?=(class|struct|union|enum|using|[A-Za-z_~]))", "", sig)
    if kind in ("class", "enum"):
        m = re.search(r"\b(?:class|struct|union|enum(?:\s+class)?)\s+(\w+)", s)
        return m.group(1) if m else s
    if kind == "alias":
        m = re.match(r"using\s+(\w+)", s)
        return m.group(1) if m else s
    if kind == "function":
        m = re.search(r"(operator\s*\(\)|operator\s*\S+?|~?\w+)\s*\(", s)
        return m.group(1).replace(" ", "") if m else s
    s = re.split(r"(?<![=!<>])=(?!=)", s.split("{")[0])[0]  # drop the initializer
    s = re.sub(r"(\[[^\]]*\])+\s*$", "", s.strip())           # and array bounds
    m = re.search(r"(\w+)\s*$", s)
    return m.group(1) if m else s


class Header:
    def __init__(self, rel, text):
        self.rel = rel
        self.text = text
        self.comment = []
        self.decls = []             # top-level Decls in order (visible and hidden)
        self.includes = []


def leading_comment(lines):
    out = []
    for line in lines:
        s = line.strip()
        if s.startswith("//"):
            out.append(re.sub(r"^// ?", "", s.rstrip()))
        elif s == "" and not out:
            continue
        else:
            break
    return out


class Scanner:
    """Walks a header character by character, tracking scopes, statements and /// comments."""

    def __init__(self, header):
        self.h = header
        self.t = header.text
        self.n = len(self.t)
        self.i = 0
        self.line = 1
        self.stack = []
        self.stmt = []
        self.stmt_line = None
        self.doc = []
        self.last = None            # (Decl, line where it ended) for ///< comments
        self.paren = 0
        self.conditional = 0        # depth of #if blocks
        self.nested_type = None     # the nested class just closed, for 'struct X { ... } x;'

    # -- helpers --
    def visible_here(self):
        ns = [s for s in self.stack if s.kind == "namespace"]
        if not ns or not all(s.visible for s in ns):
            return False
        for s in self.stack:
            if s.kind == "class" and (s.access != "public" or not s.visible):
                return False
        return True

    def in_cellflow(self):
        ns = [s.name for s in self.stack if s.kind == "namespace"]
        return bool(ns) and ns[0].split("::")[0] == "cellflow"

    def scope_name(self):
        return "::".join(s.name for s in self.stack if s.kind == "namespace")

    def hidden_namespace(self):
        return any(s.kind == "namespace" and not s.visible for s in self.stack)

    def current_class(self):
        return self.stack[-1] if self.stack and self.stack[-1].kind == "class" else None

    def advance(self, k=1):
        for _ in range(k):
            if self.i < self.n and self.t[self.i] == "\n":
                self.line += 1
            self.i += 1

    def skip_balanced(self, collect):
        """At '{': moves past the matching '}', returning the text when collect is true."""
        depth = 0
        start = self.i
        while self.i < self.n:
            c = self.t[self.i]
            if c in "\"'":
                self.skip_literal()
                continue
            if self.t.startswith("//", self.i):
                while self.i < self.n and self.t[self.i] != "\n":
                    self.advance()
                continue
            if self.t.startswith("/*", self.i):
                end = self.t.find("*/", self.i + 2)
                self.advance((end + 2 if end >= 0 else self.n) - self.i)
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    self.advance()
                    return self.t[start:self.i] if collect else ""
            self.advance()
        return ""

    def skip_literal(self):
        q = self.t[self.i]
        j = self.i + 1
        while j < self.n and self.t[j] != q:
            j += 2 if self.t[j] == "\\" else 1
        text = self.t[self.i:j + 1]
        self.advance(j + 1 - self.i)
        return text

    def add_stmt(self, text):
        if not self.stmt and text.strip():
            self.stmt_line = self.line
        self.stmt.append(text)

    def stmt_text(self):
        return "".join(self.stmt).strip()

    def reset_stmt(self):
        self.stmt = []
        self.stmt_line = None
        self.paren = 0

    def record(self, kind, sig, body=None):
        """Records a declaration (if public) in the innermost class or at top level."""
        doc, self.doc = self.doc, []
        sig = normalize(sig)
        if kind == "function":
            sig = top_level_colon_init(sig)
            sig = re.sub(r"\s*=\s*(default|delete)$", r" = \1", sig)
        if re.match(r"^(static_assert|friend)\b", sig) or not sig:
            return None
        if kind == "variable":  # an immediately invoked lambda as initializer: its body is not the API
            sig = re.sub(r"=\s*\[[^\]]*\]\s*(\([^)]*\))?\s*\{.*\}\s*\(\)$", "= [] { ... }()", sig)
        if not self.in_cellflow():
            return None
        cls = self.current_class()
        if cls is not None:
            if cls.access != "public" or cls.decl is None:
                return None
        elif not self.visible_here() and not (kind == "class" and self.hidden_namespace()):
            return None
        d = Decl(kind, decl_name(sig, kind), sig + (" " + normalize(body) if body else ""), doc,
                 self.scope_name(), self.stmt_line or self.line)
        if cls is not None:
            d.section = cls.section
            cls.decl.members.append(d)
        else:
            d.hidden = not self.visible_here()
            s = self.stack[-1] if self.stack else None
            d.section = s.section if s else None
            self.h.decls.append(d)
        return d

    # -- the walk --
    def run(self):
        at_line_start = True
        while self.i < self.n:
            c = self.t[self.i]
            if at_line_start and c in " \t":
                self.advance()
                continue
            if at_line_start and c == "#":
                self.preprocessor()
                continue
            at_line_start = False
            if c == "\n":
                self.add_stmt(" ")
                self.advance()
                at_line_start = True
                continue
            if self.t.startswith("///<", self.i):
                text = self.comment_line()[4:].strip()
                if self.last and self.last[1] == self.line:
                    self.last[0].doc.append(text)
                continue
            if self.t.startswith("///", self.i) and not self.t.startswith("////", self.i):
                text = self.comment_line()[3:]
                self.doc.append(text[1:] if text.startswith(" ") else text)
                continue
            if self.t.startswith("//", self.i):
                text = self.comment_line()
                m = SECTION.match(text)
                if m and self.stack and not self.stmt_text():
                    self.stack[-1].section = None if END_OF_GROUP.match(m.group(1)) else m.group(1)
                    self.doc = []
                continue
            if self.t.startswith("/*", self.i):
                end = self.t.find("*/", self.i + 2)
                self.advance((end + 2 if end >= 0 else self.n) - self.i)
                continue
            if c in "\"'":
                self.add_stmt(self.skip_literal())
                continue
            if c == "(":
                self.paren += 1
            elif c == ")":
                self.paren -= 1
            if c == "{":
                self.open_brace()
                continue
            if c == "}":
                self.advance()
                self.nested_type = None
                if self.stack:
                    closed = self.stack.pop()
                    if closed.kind == "class" and closed.decl is not None and self.current_class() is not None:
                        self.nested_type = closed.name  # for a member declared with it: '} tape;'
                self.reset_stmt()
                self.doc = []
                continue
            if c == ";":
                self.advance()
                self.end_statement()
                continue
            if c == ":" and self.t[self.i + 1:self.i + 2] != ":" and self.t[self.i - 1:self.i] != ":":
                m = ACCESS.match(self.stmt_text())
                cls = self.current_class()
                if m and cls is not None:
                    cls.access = m.group(1)
                    cls.section = None
                    self.reset_stmt()
                    self.doc = []
                    self.advance()
                    continue
            self.add_stmt(c)
            self.advance()

    def comment_line(self):
        end = self.t.find("\n", self.i)
        end = self.n if end < 0 else end
        text = self.t[self.i:end].rstrip()
        self.advance(end - self.i)
        return text

    def preprocessor(self):
        start = self.i
        while True:
            end = self.t.find("\n", self.i)
            end = self.n if end < 0 else end
            cont = self.t[self.i:end].rstrip().endswith("\\")
            self.advance(end - self.i)
            if not cont or self.i >= self.n:
                break
            self.advance()
        text = self.t[start:self.i]
        if re.match(r"#\s*if", text):
            self.conditional += 1
        elif re.match(r"#\s*endif", text):
            self.conditional -= 1
        m = re.match(r"#\s*define\s+(CELLFLOW_\w+)(\([^)]*\))?\s*(.*)", text, re.S)
        if m and not self.stack and self.conditional == 0:  # configuration macros are internal
            value = normalize(m.group(3).replace("\\\n", " "))
            d = Decl("macro", m.group(1), f"#define {m.group(1)}{m.group(2) or ''} {value}".rstrip(), self.doc,
                     "", self.line)
            self.h.decls.append(d)
        inc = re.match(r'#\s*include\s+"(cellflow/[^"]+)"', text)
        if inc and not self.stack:
            self.h.includes.append(inc.group(1))
        self.doc = []

    def open_brace(self):
        s = self.stmt_text()
        bare = re.sub(r"^template\s*<.*?>\s*(?=(class|struct|union|enum))", "", normalize(s))
        m = re.match(r"^namespace\s*([\w:]*)\s*$", s)
        if m:
            name = m.group(1)
            visible = bool(name) and "detail" not in name.split("::")
            self.advance()
            self.stack.append(Scope("namespace", name or "(anonymous)", visible))
            self.reset_stmt()
            self.doc = []
            return
        if re.match(r"^enum\b", bare):
            body = self.skip_balanced(True)
            self.record("enum", s, body)
            self.reset_stmt()
            return
        if re.match(r"^(class|struct|union)\s+\w+", bare) and "=" not in bare.split("{")[0] and self.paren == 0:
            d = self.record("class", s)
            self.advance()
            default = "private" if bare.startswith("class") else "public"
            cls = self.current_class()
            visible = d is not None
            self.stack.append(Scope("class", decl_name(normalize(s), "class"), visible, default, d))
            if d is not None:
                m = re.search(r":\s*(.*)$", re.sub(r"^.*?\b(class|struct|union)\s+\w+\s*", "", normalize(s)))
                if m:
                    d.bases = split_top_level(m.group(1))
                if cls is not None:
                    d.kind = "class"
            self.reset_stmt()
            return
        in_init_list = re.search(r"\)\s*(noexcept\s*)?:\s*.*[\w>]$", s) is not None and "(" in s
        if self.paren > 0 or s.endswith("=") or s.endswith("return") or ("(" not in s) or in_init_list:
            # a braced initializer (default argument, member initializer, aggregate)
            self.add_stmt(self.skip_balanced(True))
            return
        # a function definition: record its declaration, skip its body
        self.record("function", s)
        self.skip_balanced(False)
        self.last = None
        self.reset_stmt()

    def end_statement(self):
        s = self.stmt_text()
        if s and self.nested_type and re.fullmatch(r"\w+", s):
            s = f"{self.nested_type} {s}"
        self.nested_type = None
        if s:
            bare = re.sub(r"^template\s*<.*?>\s*", "", normalize(s))
            if bare.startswith("using namespace") or bare.startswith("namespace"):
                kind = None
            elif re.match(r"^using\s+\w+\s*=", bare):
                kind = "alias"
            elif re.match(r"^(class|struct|union)\s+\w+$", bare) or bare.startswith("using "):
                kind = None  # forward declaration or using-declaration
            elif re.search(r"(\w|\boperator\s*[^\s\w(]+)\s*\([^=]*\)\s*((const|noexcept|override|final)\s*)*"
                           r"(= 0|= default|= delete)?[\s\w]*$", bare) \
                    and not re.search(r"=\s*[^=]*\(", re.sub(r"\boperator\s*[^\s\w(]+", "operator",
                                                              bare.split("(")[0] + "(")):
                kind = "function"
            else:
                kind = "variable"
            if kind:
                d = self.record(kind, s)
                if d is not None:
                    self.last = (d, self.line)
        self.reset_stmt()
        self.doc = []


def parse_header(path, rel):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    h = Header(rel, text)
    h.comment = leading_comment(text.split("\n"))
    Scanner(h).run()
    return h


# ---- Markdown ----

def escape_md(text):
    """Escapes Markdown outside `code spans`: <, >, * and a leading #."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for k, p in enumerate(parts):
        if k % 2 == 1:
            out.append(p)
            continue
        p = p.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*")
        out.append(p)
    s = "".join(out)
    return re.sub(r"^(\s*)([#+-]|\d+\.)(\s)", r"\1\\\2\3", s)


def render_comment(lines, code_lang="cpp"):
    """/// or file comment lines -> Markdown: paragraphs, bullets, and indented lines as code."""
    out = []
    para = []
    code = []
    in_bullet = False

    def flush_para():
        nonlocal para
        if para:
            out.append(escape_md(" ".join(x.strip() for x in para)))
            out.append("")
            para = []

    def flush_code():
        nonlocal code
        if code:
            while code and not code[-1].strip():
                code.pop()
            indent = min(len(c) - len(c.lstrip()) for c in code if c.strip())
            out.append("```" + code_lang)
            out.extend(c[indent:].rstrip() for c in code)
            out.append("```")
            out.append("")
            code = []

    for line in lines:
        if not line.strip():
            if code:
                code.append("")
            else:
                flush_para()
            in_bullet = False
            continue
        indented = line.startswith("  ")
        bullet = re.match(r"^\s?[*-] ", line)
        if bullet:
            flush_code()
            flush_para()
            para = ["- " + line.strip()[2:]]
            in_bullet = True
            continue
        if in_bullet and indented and not code:
            para.append(line)
            continue
        if indented:
            flush_para()
            code.append(line)
            in_bullet = False
            continue
        flush_code()
        para.append(line)
    flush_code()
    flush_para()
    text = "\n".join(out).strip("\n")
    # a bullet paragraph was escaped ("\- "): restore the list marker
    text = re.sub(r"(?m)^\\- ", "- ", text)
    return text


def anchor_id(text):
    return re.sub(r"[^a-z0-9_-]", "", text.lower().replace(" ", "-"))


def qualified(d):
    return f"{d.scope}::{d.name}" if d.scope else d.name


def render_member(m):
    doc = " ".join(x.strip() for x in m.doc if x.strip())
    line = f"- `{m.signature}`"
    if doc:
        line += ": " + escape_md(doc)
    return line


def render_members(members, out):
    section = None
    for m in members:
        if m.section != section:
            title = m.section or "other members"  # after a group, members outside any group
            section = m.section
            out.append("")
            out.append(f"*{escape_md(title)}:*")
            out.append("")
        out.append(render_member(m))


def contract_kind(section):
    """'cell contract' or 'internal' for a group shown apart from the user API, else None."""
    m = CONTRACT.match(section or "")
    return m.group(1).lower() if m else None


def contract_subtitle(section):
    """'cell contract: step functions (...)' -> 'step functions (...)'."""
    return CONTRACT.sub("", section, count=1).strip()


def is_user(d):
    return contract_kind(d.section) is None


def hidden_bases(d, hidden):
    """The bases of d declared in a detail namespace of its header: [(spelling, Decl)]."""
    out = []
    for b in d.bases:
        base = re.sub(r"^(public|protected|private)\s+", "", b)
        bname = re.sub(r"<.*$", "", base).split("::")[-1]
        if bname in hidden and hidden[bname].members:
            out.append((base, hidden[bname]))
    return out


def render_contract_members(groups, out):
    """groups: [(section, inherited-from or None, [members])], in order. One block per kind:
    '**Cell contract** (...):' then a sub-list per group."""
    for kind in dict.fromkeys(contract_kind(s) for s, _, _ in groups):
        out.append("")
        out.append(f"**{kind.capitalize()}** ({CONTRACT_NOTE[kind]}):")
        for section, origin, members in groups:
            if contract_kind(section) != kind:
                continue
            label = escape_md(contract_subtitle(section))
            if origin:
                label += (", " if label else "") + f"inherited from `{origin}`"
            out.append("")
            if label:
                out.append(f"*{label[0].upper() + label[1:]}:*")
                out.append("")
            out.extend(render_member(m) for m in members)


def contract_groups(members, origin):
    groups = []
    for m in members:
        if is_user(m):
            continue
        if groups and groups[-1][0] == m.section:
            groups[-1][2].append(m)
        else:
            groups.append((m.section, origin, [m]))
    return groups


def render_decl(d, hidden, out, level="###"):
    out.append(f"{level} `{qualified(d)}`")
    out.append("")
    out.append("```cpp")
    out.append(d.signature)
    out.append("```")
    out.append("")
    if d.doc:
        out.append(render_comment(d.doc))
        out.append("")
    user = [m for m in d.members if is_user(m)]
    if user:
        render_members(user, out)
        out.append("")
    groups = contract_groups(d.members, None)
    for base, b in hidden_bases(d, hidden):
        inherited = [m for m in b.members if is_user(m)]
        if inherited:
            out.append(f"Public members inherited from `{base}`:")
            out.append("")
            render_members(inherited, out)
            out.append("")
        groups += contract_groups(b.members, base)
    if groups:
        render_contract_members(groups, out)
        out.append("")


def contract_label(decls):
    kinds = list(dict.fromkeys(contract_kind(d.section) for d in decls))
    return " and ".join("internals" if k == "internal" else k for k in sorted(kinds))


def contract_anchor(h):
    return anchor_id(f"`{h.rel}` ({contract_label(contract_decls(h))})")


def contract_decls(h):
    return [d for d in h.decls if not d.hidden and not is_user(d)]


def render_contract_part(headers, out):
    """The last part of the file: the cell-contract and internal declarations, header by header."""
    if not any(contract_decls(h) for h in headers):
        return
    out.append("")
    out.append(f"## {CONTRACT_TITLE}")
    out.append("")
    out.append("Public names that a user of cellflow does not need, header by header: the cell contract (for")
    out.append("writing a cell: `cells/cell_traits.hpp`, [Writing your own cell](concepts.md#writing-your-own-cell))")
    out.append("and the library's plumbing. Such members of the user-facing classes are listed with their class.")
    for h in headers:
        contract = contract_decls(h)
        if not contract:
            continue
        hidden = {d.name: d for d in h.decls if d.hidden and d.kind == "class"}
        out.append("")
        out.append(f"### `{h.rel}` ({contract_label(contract)})")
        out.append("")
        section = None
        for d in contract:
            if d.section != section:
                section = d.section
                subtitle = contract_subtitle(section)
                if subtitle:
                    out.append(f"*{escape_md(subtitle[0].upper() + subtitle[1:])}:*")
                    out.append("")
            render_decl(d, hidden, out, "####")


def render(headers):
    out = ["<!-- not compiled (whole file): declarations generated from the headers by scripts/gen_api_docs.py -->",
           "# API reference",
           "",
           "Every public name of cellflow, header by header: its declaration and the comment the header gives it.",
           "Generated by `scripts/gen_api_docs.py` from `include/cellflow/**/*.hpp`: do not edit this file; after",
           "changing a header run `python3 scripts/gen_api_docs.py` (the ctest `docs_api_up_to_date` fails while",
           "this file is out of date). Names in `detail` namespaces and `include/cellflow/detail/` are internal.",
           "For an introduction see [getting-started.md](getting-started.md) and [concepts.md](concepts.md).",
           "",
           "Each header's section shows its user API. Public names a user does not need are kept apart: the",
           "**cell contract** (what a cell type provides and what the library hands it: the step and sequence",
           "functions, tapes, `SequenceArgs`, `Gradients`, the state operations; see `cells/cell_traits.hpp` and",
           "[Writing your own cell](concepts.md#writing-your-own-cell)) and **internal** plumbing. A class lists",
           "such members after its user members, under \"Cell contract\" or \"Internal\"; such declarations of a",
           f"header are in the last part, [{CONTRACT_TITLE}](#{anchor_id(CONTRACT_TITLE)}).",
           "",
           "Headers:",
           ""]
    for h in headers:
        names = [d.name for d in h.decls if not d.hidden and is_user(d)]
        summary = ", ".join(f"`{n}`" for n in dict.fromkeys(names))
        line = f"- [`{h.rel}`](#{anchor_id(h.rel)})" + (f": {summary}" if summary else "")
        contract = contract_decls(h)
        if contract:
            others = ", ".join(f"`{n}`" for n in dict.fromkeys(d.name for d in contract))
            line += f" ([{contract_label(contract)}](#{contract_anchor(h)}): {others})"
        out.append(line)
    for h in headers:
        out.append("")
        out.append(f"## {h.rel}")
        out.append("")
        if h.comment:
            out.append(render_comment(h.comment, "text"))
            out.append("")
        public = [d for d in h.decls if not d.hidden and is_user(d)]
        contract = contract_decls(h)
        if not public and not contract:
            if h.includes:
                out.append("Includes " + ", ".join(f"[`{i}`](#{anchor_id(i)})" for i in h.includes) + ".")
            else:
                out.append("No public names: the header's declarations are internal (`detail`).")
            continue
        hidden = {d.name: d for d in h.decls if d.hidden and d.kind == "class"}
        section = None
        for d in public:
            if d.section != section and d.kind != "macro":
                section = d.section
                if section:
                    out.append(f"*{escape_md(section)}:*")
                    out.append("")
            render_decl(d, hidden, out)
        if contract:
            names = ", ".join(f"`{n}`" for n in dict.fromkeys(d.name for d in contract))
            where = f"[{CONTRACT_TITLE}](#{contract_anchor(h)})"
            if public:
                out.append(f"Also here, not needed to use the header ({contract_label(contract)}): {names}, listed "
                           f"under {where}.")
            else:
                out.append(f"No user-facing names: this header's declarations ({contract_label(contract)}: {names}) "
                           f"are listed under {where}.")
            out.append("")
    render_contract_part(headers, out)
    while out and not out[-1]:
        out.pop()
    text = "\n".join(out) + "\n"
    return re.sub(r"\n{3,}", "\n\n", text)


def collect():
    headers = []
    base = os.path.join(INCLUDE, "cellflow")
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if d != "detail"]
        for f in filenames:
            if f.endswith(".hpp"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, INCLUDE).replace(os.sep, "/")
                headers.append((path, rel))

    def key(item):
        parts = item[1].split("/")
        d = parts[1] if len(parts) > 2 else ""
        order = DIR_ORDER.index(d) if d in DIR_ORDER else len(DIR_ORDER)
        return (order, d, item[1])

    return [parse_header(p, r) for p, r in sorted(headers, key=key)]


def undocumented(headers):
    """The names docs/api.md shows without a comment: public declarations, their members and the
    members of the detail bases whose members it lists (once per base)."""
    out = []
    for h in headers:
        hidden = {d.name: d for d in h.decls if d.hidden and d.kind == "class"}
        bases = []
        for d in h.decls:
            if d.hidden:
                continue
            if not d.doc:
                out.append(f"{h.rel}: {qualified(d)}")
            for m in d.members:
                if not m.doc:
                    out.append(f"{h.rel}: {qualified(d)}::{m.name}")
            bases += [b for _, b in hidden_bases(d, hidden) if b not in bases]
        for b in bases:
            for m in b.members:
                if not m.doc:
                    out.append(f"{h.rel}: {qualified(b)}::{m.name}")
    return out


def main(argv):
    headers = collect()
    text = render(headers)
    if "--undocumented" in argv:
        for line in undocumented(headers):
            print(line)
        return 0
    if "--stdout" in argv:
        sys.stdout.write(text)
        return 0
    if "--check" in argv:
        try:
            with open(OUTPUT, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = ""
        if current == text:
            print("docs/api.md is up to date")
            return 0
        diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(), "docs/api.md (committed)",
                                         "docs/api.md (from the headers)", lineterm="", n=1))
        print("\n".join(diff[:200]))
        if len(diff) > 200:
            print(f"... {len(diff) - 200} more diff lines")
        print("docs/api.md is out of date: run python3 scripts/gen_api_docs.py and commit docs/api.md")
        return 1
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(OUTPUT, ROOT)}: {len(headers)} headers")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
