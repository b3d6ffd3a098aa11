#!/usr/bin/env python3
"""Extracts the C++ samples of cellflow's Markdown documentation so that the test suite compiles
(and runs) them, and the docs cannot rot. Python 3 standard library only.

Usage (tests/docs/CMakeLists.txt runs the first two; nothing needs to be run by hand):

    extract_samples.py extract --root REPO --out DIR --manifest FILE.cmake [--without-mpi] MD...
        Writes one .cpp per whole program and one .cpp per Markdown file for its fragments into
        DIR (a file is rewritten only when its content changes, so nothing rebuilds needlessly),
        and FILE.cmake, which lists them for CMake. --without-mpi (the build has no
        cellflow::mpi): the samples that need MPI are left out, and FILE.cmake names them.
    extract_samples.py run EXE...
        Runs the EXEs one after another in one fresh temporary directory (removed afterwards) and
        exits with the first failure's status.
    extract_samples.py selftest
        Checks this script's own parsing on made-up Markdown (also a ctest).

What is a sample: every fenced block whose info string is `cpp` (or `c++`, `cxx`) in README.md
and docs/*.md.

* A block that defines `int main(` is a **program**: it is compiled as it stands, one
  translation unit and one executable per block, and run (in a fresh temporary directory) unless
  it is marked `<!-- not run: REASON -->`.
* Any other block is a **fragment**: it is compiled as the body of a member function of
  `cellflow_docs::Preamble` (tests/docs/doc_preamble.hpp), whose members stand for what the
  surrounding prose has built: `rng`, `multi`, `dense`, `vars`, `adam`, `X`, `y`, `frames`, ...
  A fragment's own declarations simply shadow them. Its `#include` lines are moved to file scope.
  All fragments of one Markdown file are one translation unit; they are compiled, not run.
* A region of a block from a line `// [verbatim: PATH]` to a line `// [end verbatim]` must be
  identical, line for line, to the region between the same two lines in the file PATH (relative
  to the repository root): code the documentation shows and code the test suite runs cannot drift
  apart (docs/concepts.md shows tests/support/elman_cell.hpp this way).
* `<!-- run in sequence: NAME -->` before programs of one Markdown file runs them, in the order
  they appear, one after another in one temporary directory, as one test (docs_run_<file>_NAME):
  a program that writes a file and a second one that reads it (docs/getting-started.md).
* A block that includes a `cellflow/distributed/` header (or `<mpi.h>`) or names `mpi` as a word
  (`cf::mpi::fit`, the preamble's `mpi`) **needs MPI**: it is linked with the cellflow::mpi target
  (a fragment of it makes its file's fragments include `cellflow/distributed/mpi.hpp` and gives
  them the preamble's `mpi` environment), and when the build has no MPI (`--without-mpi`) it is
  left out, programs and fragments alike, and CMake says so when it configures. A program that
  needs MPI runs as a single rank (no mpirun), as any other program.
* `<!-- not compiled: REASON -->` on the last non-blank line before a block skips it (for
  signature lists and other declarations that are not code to compile). A file whose first lines
  hold `<!-- not compiled (whole file): REASON -->` is skipped whole (docs/api.md, generated from
  the headers, which are compiled anyway). A marker without a reason is an error.

Every generated file starts its sample with `#line N "FILE.md"`, so a compiler error names the
Markdown file and line.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

CPP_LANGS = {"cpp", "c++", "cxx"}
FENCE = re.compile(r"^( {0,3}|\s*)(`{3,}|~{3,})\s*([^\s`]*)[^`]*$")
MARKER = re.compile(r"^\s*<!--\s*(not compiled|not run|run in sequence)\s*(\(whole file\))?\s*(:?)\s*(.*?)\s*-->\s*$")
MAIN = re.compile(r"\bint\s+main\s*\(")
INCLUDE = re.compile(r"^\s*#\s*include\b")
VERBATIM = re.compile(r"^\s*//\s*\[verbatim:\s*(\S+)\s*\]\s*$")
VERBATIM_END = re.compile(r"^\s*//\s*\[end verbatim\]\s*$")
NEEDS_MPI = re.compile(r"^\s*#\s*include\s*[<\"]cellflow/distributed/|\bmpi\b")


class SampleError(Exception):
    pass


class Block:
    def __init__(self, md, fence_line, first_line, lines, kind, run, skip_reason=None):
        self.md = md                  # path relative to the repository root, e.g. docs/concepts.md
        self.fence_line = fence_line  # 1-based line of the opening fence
        self.first_line = first_line  # 1-based line of the first code line
        self.lines = lines            # code lines, fence indentation removed, without newlines
        self.kind = kind              # "program" or "fragment"
        self.run = run                # programs: run after building
        self.skip_reason = skip_reason
        self.sequence = None          # programs: the name of the sequence they run in
        self.needs_mpi = any(NEEDS_MPI.search(line) for line in lines)  # links cellflow::mpi


def parse_marker(line, md, lineno):
    """(kind, whole_file, reason) for a marker comment, None for any other line."""
    m = MARKER.match(line)
    if not m:
        return None
    kind, whole, colon, reason = m.group(1), bool(m.group(2)), m.group(3), m.group(4)
    if not colon or not reason:
        raise SampleError(f"{md}:{lineno}: marker '<!-- {kind}{' (whole file)' if whole else ''}: REASON -->' "
                          f"needs a reason after the colon")
    if whole and kind != "not compiled":
        raise SampleError(f"{md}:{lineno}: only 'not compiled (whole file)' applies to a whole file")
    return kind, whole, reason


def parse_markdown(md, text):
    """The C++ blocks of one Markdown file (skipped ones included, with their reason)."""
    lines = text.split("\n")
    for k, line in enumerate(lines[:5]):
        m = parse_marker(line, md, k + 1)
        if m and m[1]:
            return []
    blocks = []
    k = 0
    while k < len(lines):
        m = FENCE.match(lines[k])
        if not m:
            marker = parse_marker(lines[k], md, k + 1)
            if marker and marker[1]:
                raise SampleError(f"{md}:{k + 1}: a whole-file marker must be within the first 5 lines")
            k += 1
            continue
        indent, fence, lang = len(m.group(1)), m.group(2), m.group(3).lower()
        start = k
        body = []
        k += 1
        while k < len(lines):
            close = re.match(r"^\s*(`{3,}|~{3,})\s*$", lines[k])
            if close and close.group(1)[0] == fence[0] and len(close.group(1)) >= len(fence):
                break
            body.append(lines[k])
            k += 1
        else:
            raise SampleError(f"{md}:{start + 1}: code block opened here is never closed")
        k += 1  # past the closing fence
        if lang not in CPP_LANGS:
            continue
        code = [line[indent:] if line[:indent].strip() == "" else line.lstrip() for line in body]
        prev = start - 1
        while prev >= 0 and lines[prev].strip() == "":
            prev -= 1
        marker = parse_marker(lines[prev], md, prev + 1) if prev >= 0 else None
        is_program = any(MAIN.search(line) for line in code)
        kind = "program" if is_program else "fragment"
        if marker and marker[0] == "not compiled":
            blocks.append(Block(md, start + 1, start + 2, code, kind, False, skip_reason=marker[2]))
            continue
        run = True
        if marker and marker[0] == "run in sequence":
            if not is_program:
                raise SampleError(f"{md}:{prev + 1}: 'run in sequence' marks a program (a block with int main)")
            if not re.fullmatch(r"[A-Za-z0-9_-]+", marker[2]):
                raise SampleError(f"{md}:{prev + 1}: a sequence name is letters, digits, '-' and '_', "
                                  f"given '{marker[2]}'")
            block = Block(md, start + 1, start + 2, code, kind, True)
            block.sequence = marker[2]
            blocks.append(block)
            continue
        if marker and marker[0] == "not run":
            if not is_program:
                raise SampleError(f"{md}:{prev + 1}: 'not run' marks a program (a block with int main); "
                                  f"fragments are never run")
            run = False
        blocks.append(Block(md, start + 1, start + 2, code, kind, run))
    return blocks


def ident(text):
    return re.sub(r"\W", "_", text)


def file_id(md):
    stem = os.path.splitext(md)[0]
    if stem.startswith("docs/"):
        stem = stem[len("docs/"):]
    return ident(stem)


def c_string(path):
    return path.replace("\\", "\\\\").replace('"', '\\"')


def program_source(block):
    return f'#line {block.first_line} "{c_string(block.md)}"\n' + "\n".join(block.lines) + "\n"


def fragments_source(md, blocks, gen_name):
    """One translation unit holding every fragment of `md` as Sample::body() of its own namespace."""
    out = [f"// Generated by tests/docs/extract_samples.py from {md}: do not edit.",
           "// Each fragment is the body of a member function of cellflow_docs::Preamble."]
    seen = set()
    for b in blocks:  # #include lines go to file scope, in order of appearance, once each
        for k, line in enumerate(b.lines):
            if INCLUDE.match(line) and line.strip() not in seen:
                seen.add(line.strip())
                out.append(f'#line {b.first_line + k} "{c_string(md)}"')
                out.append(line.strip())
    if any(b.needs_mpi for b in blocks):  # the preamble adds cellflow/distributed/mpi.hpp and `mpi`
        out.append("#define CELLFLOW_DOC_MPI 1")
    out.append(f'#line {len(out) + 2} "{c_string(gen_name)}"')
    out.append('#include "doc_preamble.hpp"')
    for b in blocks:
        out.append(f"namespace doc_fragment_L{b.fence_line} {{")
        out.append("struct Sample : cellflow_docs::Preamble {")
        out.append("  void body();")
        out.append("};")
        out.append("void Sample::body() {")
        out.append(f'#line {b.first_line} "{c_string(md)}"')
        out.extend("" if INCLUDE.match(line) else line for line in b.lines)
        out.append(f'#line {len(out) + 2} "{c_string(gen_name)}"')
        out.append("}")
        out.append(f"}}  // namespace doc_fragment_L{b.fence_line}")
    return "\n".join(out) + "\n"


def write_if_changed(path, content):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == content:
                return
    except FileNotFoundError:
        pass
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)


def cmake_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def verbatim_region(lines, start, where):
    """The lines from `start` (a [verbatim: PATH] line) to its [end verbatim] line, inclusive."""
    for k in range(start + 1, len(lines)):
        if VERBATIM_END.match(lines[k]):
            return lines[start:k + 1]
    raise SampleError(f"{where}: '// [verbatim: ...]' is never closed by '// [end verbatim]'")


def check_verbatim(root, block):
    """Raises SampleError unless every verbatim region of `block` equals the one in its file."""
    for k, line in enumerate(block.lines):
        m = VERBATIM.match(line)
        if not m:
            continue
        where = f"{block.md}:{block.first_line + k}"
        shown = verbatim_region(block.lines, k, where)
        path = os.path.join(root, m.group(1))
        try:
            with open(path, encoding="utf-8") as f:
                source = f.read().split("\n")
        except OSError as e:
            raise SampleError(f"{where}: cannot read '{m.group(1)}': {e}")
        starts = [j for j, l in enumerate(source) if l.strip() == line.strip()]
        if len(starts) != 1:
            raise SampleError(f"{where}: '{m.group(1)}' has {len(starts)} lines '{line.strip()}', expected one")
        kept = verbatim_region(source, starts[0], m.group(1))
        for j in range(max(len(shown), len(kept))):
            a = shown[j] if j < len(shown) else "<end of the region>"
            b = kept[j] if j < len(kept) else "<end of the region>"
            if a != b:
                raise SampleError(f"{block.md}:{block.first_line + k + j}: differs from {m.group(1)}:"
                                  f"{starts[0] + j + 1}: the documentation shows\n  {a}\nthe file holds\n  {b}")


def extract(root, out_dir, manifest, mds, with_mpi=True):
    os.makedirs(out_dir, exist_ok=True)
    entries = []  # (kind, id, source, where, run, mpi or nompi)
    skipped_mpi = []  # where the samples left out for want of MPI are
    report = []
    for md in mds:
        rel = os.path.relpath(os.path.abspath(md), os.path.abspath(root)).replace(os.sep, "/")
        with open(md, encoding="utf-8") as f:
            blocks = parse_markdown(rel, f.read())
        fid = file_id(rel)
        if not with_mpi:
            for b in blocks:
                if b.needs_mpi and b.skip_reason is None:
                    b.skip_reason = "needs cellflow::mpi, and this build has no MPI"
                    skipped_mpi.append(f"{rel}:{b.fence_line}")
        fragments = [b for b in blocks if b.kind == "fragment" and b.skip_reason is None]
        for b in blocks:
            check_verbatim(root, b)
            if b.skip_reason is not None:
                report.append(f"{rel}:{b.fence_line}: not compiled ({b.skip_reason})")
            elif b.kind == "program":
                pid = f"{fid}_L{b.fence_line}"
                src = os.path.join(out_dir, f"{pid}.cpp")
                write_if_changed(src, program_source(b))
                run_field = f"seq={fid}_{ident(b.sequence)}" if b.sequence else ("run" if b.run else "norun")
                entries.append(("program", pid, src, f"{rel}:{b.fence_line}", run_field,
                                "mpi" if b.needs_mpi else "nompi"))
                report.append(f"{rel}:{b.fence_line}: program{'' if b.run else ', not run'}"
                              f"{', in sequence ' + b.sequence if b.sequence else ''}")
        if fragments:
            src = os.path.join(out_dir, f"{fid}_fragments.cpp")
            write_if_changed(src, fragments_source(rel, fragments, src))
            where = ", ".join(str(b.fence_line) for b in fragments)
            entries.append(("fragments", fid, src, f"{rel}: lines {where}", "norun",
                            "mpi" if any(b.needs_mpi for b in fragments) else "nompi"))
            report.append(f"{rel}: {len(fragments)} fragment(s) at lines {where}")
    lines = ["# Generated by tests/docs/extract_samples.py: the documentation's C++ samples.",
             "# Each entry is kind|id|source|where|run|mpi (mpi: links cellflow::mpi, else nompi).",
             "set(CELLFLOW_DOC_SAMPLES"]
    lines += ["  " + cmake_quote("|".join(e)) for e in entries]
    lines.append(")")
    lines.append("# The samples left out because they need MPI and the build has none (--without-mpi).")
    lines.append("set(CELLFLOW_DOC_SKIPPED_MPI" + "".join(" " + cmake_quote(w) for w in skipped_mpi) + ")")
    write_if_changed(manifest, "\n".join(lines) + "\n")
    return report


def run(exes):
    """Runs the programs one after another in one fresh temporary directory; the first failure's
    status (0 when all succeed)."""
    tmp = tempfile.mkdtemp(prefix="cellflow-doc-sample-")
    try:
        for exe in exes:
            rc = subprocess.run([os.path.abspath(exe)], cwd=tmp).returncode
            if rc != 0:
                print(f"extract_samples.py: {os.path.basename(exe)} exited with status {rc}", file=sys.stderr)
                return rc
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def selftest():
    """Checks the parser on made-up Markdown; returns the number of failed checks."""
    failed = 0

    def check(cond, what):
        nonlocal failed
        if not cond:
            failed += 1
            print(f"FAILED: {what}")

    def expect_error(text, needle, what):
        try:
            parse_markdown("t.md", text)
        except SampleError as e:
            check(needle in str(e), f"{what}: message '{e}' lacks '{needle}'")
            return
        check(False, f"{what}: no error")

    md = "\n".join([
        "# Title",                                      # 1
        "```cpp",                                       # 2
        "#include <cellflow/cellflow.hpp>",             # 3
        "int main() { return 0; }",                     # 4
        "```",                                          # 5
        "<!-- not compiled: signature list -->",        # 6
        "",                                             # 7
        "```cpp",                                       # 8
        "void f(T);",                                   # 9
        "```",                                          # 10
        "```python",                                    # 11
        "print('not C++')",                             # 12
        "```",                                          # 13
        "1. a list item:",                              # 14
        "   ```c++",                                    # 15
        "   vars.zero_grad();",                         # 16
        "   ```",                                       # 17
        "<!-- not run: needs a file -->",               # 18
        "~~~~cpp",                                      # 19
        "int main(int argc, char** argv) {",            # 20
        "```",                                          # 21  (not a closing fence: ~ opened)
        "}",                                            # 22
        "~~~~",                                         # 23
    ])
    blocks = parse_markdown("t.md", md)
    check(len(blocks) == 4, f"4 C++ blocks, found {len(blocks)}")
    if len(blocks) == 4:
        a, b, c, d = blocks
        check(a.kind == "program" and a.run and a.first_line == 3 and a.skip_reason is None, "block 1: program, run")
        check(b.skip_reason == "signature list", "block 2: not compiled, with its reason")
        check(c.kind == "fragment" and c.lines == ["vars.zero_grad();"] and c.first_line == 16,
              "block 3: indented fragment, indentation removed, line 16")
        check(d.kind == "program" and not d.run and d.lines[1] == "```", "block 4: ~~~~ fence, not run")
        src = program_source(a)
        check(src.startswith('#line 3 "t.md"\n#include <cellflow/cellflow.hpp>\n'), "program source starts with #line")
        frag = fragments_source("t.md", [c], "gen.cpp")
        check('#line 16 "t.md"\n   vars.zero_grad();'.replace("   ", "") in frag, "fragment body after #line 16")
        check("struct Sample : cellflow_docs::Preamble" in frag, "fragment wrapped in the preamble")
        # generated-file #line directives name the real next line of the generated file
        for k, line in enumerate(frag.split("\n")):
            m = re.match(r'#line (\d+) "gen.cpp"', line)
            if m:
                check(int(m.group(1)) == k + 2, f"#line {m.group(1)} on generated line {k + 1}")
    whole = "<!-- not compiled (whole file): generated declarations -->\n```cpp\nnot C++\n```\n"
    check(parse_markdown("t.md", whole) == [], "whole-file marker skips every block")
    inc = parse_markdown("t.md", "```cpp\n#include <vector>\nstd::vector<int> v;\n```\n")
    frag = fragments_source("t.md", inc, "gen.cpp")
    check(frag.index("#include <vector>") < frag.index("doc_preamble.hpp"), "includes hoisted above the preamble")
    check(frag.count("#include <vector>") == 1, "the hoisted include is not left in the body")
    seq = parse_markdown("t.md", "<!-- run in sequence: pair -->\n```cpp\nint main() {}\n```\n")
    check(len(seq) == 1 and seq[0].sequence == "pair" and seq[0].run, "run in sequence: the program joins 'pair'")
    expect_error("<!-- run in sequence: pair -->\n```cpp\nx;\n```\n", "marks a program", "sequence on a fragment")
    expect_error("<!-- run in sequence: a b -->\n```cpp\nint main() {}\n```\n", "sequence name", "bad name")
    expect_error("<!-- not compiled -->\n```cpp\nx;\n```\n", "needs a reason", "marker without a reason")
    expect_error("<!-- not compiled: -->\n```cpp\nx;\n```\n", "needs a reason", "marker with an empty reason")
    expect_error("```cpp\nint x;\n", "never closed", "unterminated block")
    expect_error("<!-- not run: no main -->\n```cpp\nx;\n```\n", "'not run' marks a program", "not run on a fragment")
    expect_error("a\nb\nc\nd\ne\n<!-- not compiled (whole file): late -->\n", "first 5 lines", "late whole-file marker")
    expect_error("<!-- not run (whole file): x -->\n", "only 'not compiled (whole file)'", "not run for a file")
    # samples that need MPI: detected, flagged for cellflow::mpi, left out by --without-mpi
    mpi_md = "\n".join([
        "```cpp",                                       # 1
        "#include <cellflow/distributed/mpi.hpp>",      # 2
        "int main(int argc, char** argv) { cellflow::mpi::Environment e(argc, argv); }",
        "```",                                          # 4
        "```cpp",                                       # 5
        "if (mpi.is_root()) vars.zero_grad();",         # 6
        "```",                                          # 7
        "```cpp",                                       # 8
        "vars.zero_grad();  // on every mpi rank (a mention in a comment counts)",
        "```",                                          # 10
        "```cpp",                                       # 11
        "adam.apply(vars);  // mpirun, impi, MPI_SUM: not the word",  # 12
        "```",                                          # 13
    ])
    mb = parse_markdown("t.md", mpi_md)
    check([b.needs_mpi for b in mb] == [True, True, True, False], f"needs MPI: {[b.needs_mpi for b in mb]}")
    frag = fragments_source("t.md", mb[1:], "gen.cpp")
    check("#define CELLFLOW_DOC_MPI 1" in frag and
          frag.index("#define CELLFLOW_DOC_MPI 1") < frag.index("doc_preamble.hpp"), "MPI fragments: define before the preamble")
    for k, line in enumerate(frag.split("\n")):
        m = re.match(r'#line (\d+) "gen.cpp"', line)
        if m:
            check(int(m.group(1)) == k + 2, f"MPI fragments: #line {m.group(1)} on generated line {k + 1}")
    check("CELLFLOW_DOC_MPI" not in fragments_source("t.md", mb[3:], "gen.cpp"), "no MPI define without MPI fragments")
    tmp = tempfile.mkdtemp(prefix="cellflow-mpi-samples-")
    try:
        with open(os.path.join(tmp, "t.md"), "w", encoding="utf-8") as f:
            f.write(mpi_md)
        for with_mpi in (True, False):
            out = os.path.join(tmp, f"out-{with_mpi}")
            extract(tmp, out, os.path.join(out, "m.cmake"), [os.path.join(tmp, "t.md")], with_mpi)
            with open(os.path.join(out, "m.cmake"), encoding="utf-8") as f:
                manifest = f.read()
            if with_mpi:
                check('"program|t_L1|' in manifest and '|run|mpi"' in manifest, "with MPI: the program links cellflow::mpi")
                check("t.md: lines 5, 8, 11|norun|mpi" in manifest, "with MPI: every fragment, linked with cellflow::mpi")
                check("set(CELLFLOW_DOC_SKIPPED_MPI)" in manifest, "with MPI: nothing left out")
            else:
                check("program|" not in manifest, "without MPI: the MPI program left out")
                check("t.md: lines 11|norun|nompi" in manifest, "without MPI: only the fragment without MPI")
                check('set(CELLFLOW_DOC_SKIPPED_MPI "t.md:1" "t.md:5" "t.md:8")' in manifest,
                      f"without MPI: the left-out samples listed: {manifest}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # verbatim regions: equal passes, one changed line fails naming both lines
    tmp = tempfile.mkdtemp(prefix="cellflow-verbatim-")
    try:
        with open(os.path.join(tmp, "src.hpp"), "w", encoding="utf-8") as f:
            f.write("head\n// [verbatim: src.hpp]\nint f();\n// [end verbatim]\ntail\n")
        good = parse_markdown("t.md", "```cpp\n// [verbatim: src.hpp]\nint f();\n// [end verbatim]\nx;\n```\n")
        try:
            check_verbatim(tmp, good[0])
        except SampleError as e:
            check(False, f"equal verbatim region refused: {e}")
        bad = parse_markdown("t.md", "```cpp\n// [verbatim: src.hpp]\nint g();\n// [end verbatim]\n```\n")
        try:
            check_verbatim(tmp, bad[0])
            check(False, "a changed verbatim region passed")
        except SampleError as e:
            check("t.md:3: differs from src.hpp:3" in str(e) and "int g();" in str(e), f"verbatim message: {e}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"extract_samples selftest: {0 if failed else 1} passed, {1 if failed else 0} failed")
    return failed


def main(argv):
    if len(argv) >= 2 and argv[1] == "selftest":
        return 1 if selftest() else 0
    if len(argv) >= 3 and argv[1] == "run":
        return run(argv[2:])
    if len(argv) >= 2 and argv[1] == "extract":
        args = argv[2:]
        opts = {}
        with_mpi = True
        while args and args[0] in ("--root", "--out", "--manifest", "--without-mpi"):
            if args[0] == "--without-mpi":
                with_mpi = False
                args = args[1:]
                continue
            if len(args) < 2:
                break
            opts[args[0]] = args[1]
            args = args[2:]
        if set(opts) == {"--root", "--out", "--manifest"} and args:
            try:
                report = extract(opts["--root"], opts["--out"], opts["--manifest"], args, with_mpi)
            except (SampleError, OSError) as e:
                print(f"extract_samples.py: {e}", file=sys.stderr)
                return 1
            for line in report:
                print(line)
            return 0
    usage = __doc__.split("What is a sample")[0]
    print(usage.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
