"""Every kernel through the GPU compilers that drivers are built on: clang for spir64 (Intel,
Mesa), amdgcn (ROCm) and nvptx (NVIDIA's front end is clang too), at -O0 and -O2, with each set
of build options the host uses (tests/cl_options in both kernel styles, as OpenCL C 1.2 and,
for 1.1 devices, 1.1). A module must define every function it calls (built-ins aside: LLVM
intrinsics and the mangled OpenCL built-ins), every kernel of its source, and compile without
a warning under -Wall -Wextra -pedantic. A plain `inline` helper (C99: no out-of-line copy)
passed PoCL, Oclgrind and Mesa, which compile with -fgnu89-inline, and would not link on a
driver that kept one call to it.

usage: test_gpu_compilers.py CL_OPTIONS CL_DIR      (exit 77 without clang or OpenCL)"""
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile

from testlib import check, summary

TARGETS = ['spir64', 'amdgcn-amd-amdhsa', 'nvptx64-nvidia-cuda']
# (-cl-denorms-are-zero means something to amdgcn only: the driver's note about it is no finding)
WARNINGS = ['-Wall', '-Wextra', '-pedantic', '-Wdouble-promotion', '-Wno-unused-command-line-argument']


def find_clang():
    """$CLANG, else the newest clang 14..17 found (Debian 12: clang-15 is PoCL's LLVM)."""
    if os.environ.get('CLANG'):
        return os.environ['CLANG']
    for c in ['clang-15', 'clang-16', 'clang-17', 'clang-14', 'clang']:
        if shutil.which(c):
            return c
    return None


def option_sets(cl_options):
    """{(source, options)} the host builds with, in both kernel styles, for OpenCL C 1.2 and 1.1."""
    sets = set()
    for style in ('cpu', 'gpu'):
        p = subprocess.run([cl_options], capture_output=True, text=True,
                           env=dict(os.environ, CLVAE_KERNEL_STYLE=style, CLVAE_KERNEL_DIR=''))
        if p.returncode == 77:
            print(p.stdout.strip())
            sys.exit(77)
        if p.returncode != 0:
            check(False, f'cl_options lists the build options ({style} style)', p.stdout + p.stderr)
            sys.exit(summary())
        for line in p.stdout.splitlines():
            src, opts = line.split('\t')
            sets.add((src, opts))
            sets.add((src, opts.replace('-cl-std=CL1.2', '-cl-std=CL1.1')))
    return sets


def problems(clang, path, opts, target, level, out_dir):
    """What is wrong with one compile (an empty list if nothing)."""
    ll = os.path.join(out_dir, f'{os.path.basename(path)}.{abs(hash((opts, target, level)))}.ll')
    cmd = [clang, '-x', 'cl', *opts.split(), '-Xclang', '-finclude-default-header', '-nogpulib', '-target', target,
           f'-{level}', '-S', '-emit-llvm', *WARNINGS, '-o', ll, path]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return [f'does not compile: {p.stderr.strip()[:1500]}']
    found = [f'warning: {w}' for w in re.findall(r'warning: (.*)', p.stderr)]
    ir = open(ll).read()
    os.remove(ll)
    defined = set(re.findall(r'^define [^@]*@"?([\w.$]+)"?\(', ir, re.M))
    for name in re.findall(r'^declare [^@]*@"?([\w.$]+)"?\(', ir, re.M):
        if not (name.startswith('llvm.') or name.startswith('_Z')):  # OpenCL C functions are not mangled
            calls = len(re.findall(rf'call [^@\n]*@{re.escape(name)}\(', ir))
            found.append(f'calls {name}() ({calls} calls) but the module does not define it')
    src = open(path).read()
    for k in re.findall(r'__kernel\s+void\s+(\w+)\s*\(', src):
        if k not in defined and not k.isupper():  # NAME in a macro's body is a parameter
            found.append(f'kernel {k} is missing from the module')
    return found


def compile_all(clang, cl_dir, sets, out_dir):
    jobs = []
    for src, opts in sorted(sets):
        levels = ['O0', 'O2'] if '-cl-std=CL1.2' in opts else ['O0']
        for target in TARGETS:
            for level in levels:
                jobs.append((src, opts, target, level))
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda j: (j, problems(clang, os.path.join(cl_dir, j[0] + '.cl'), j[1], j[2], j[3],
                                                         out_dir)), jobs))
    return results


def controls(clang, out_dir):
    """The checker itself must catch what it looks for."""
    cases = {
        'plain inline helper': ('inline void helper(__global float *x) { x[0] = 1.0f; }\n'
                                '__kernel void k(__global float *x) { helper(x); }\n', 'does not define'),
        'a warning': ('__kernel void k(__global float *x) { int unused; x[0] = 1.0f; }\n', 'warning'),
    }
    for what, (text, expect) in cases.items():
        path = os.path.join(out_dir, 'control.cl')
        open(path, 'w').write(text)
        got = problems(clang, path, '-cl-std=CL1.2', 'amdgcn-amd-amdhsa', 'O0', out_dir)
        check(any(expect in g for g in got), f'control: the check reports {what}', got)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    cl_options, cl_dir = sys.argv[1], sys.argv[2]
    clang = find_clang()
    if not clang:
        print('SKIP: no clang (apt install clang-15)')
        return 77
    version = subprocess.run([clang, '--version'], capture_output=True, text=True).stdout.splitlines()[0]
    sets = option_sets(cl_options)
    print(f'{version}; {len(sets)} (source, options) sets from {cl_dir}')
    with tempfile.TemporaryDirectory() as out_dir:
        controls(clang, out_dir)
        results = compile_all(clang, cl_dir, sets, out_dir)
    for (src, opts, target, level), found in results:
        if found:
            check(False, f'cl/{src}.cl [{opts}] for {target} at -{level}', '\n'.join(found))
    bad = sum(1 for _, f in results if f)
    check(bad == 0, f'{len(results) - bad} of {len(results)} compiles define every function they call, hold every '
          f'kernel and warn about nothing ({len(sets)} option sets x {len(TARGETS)} targets x -O0/-O2)')
    return summary()


if __name__ == '__main__':
    sys.exit(main())
