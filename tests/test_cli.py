#!/usr/bin/env python3
"""CLI tests: `clvae devices` (table and JSON), device selection by index and by name,
the error paths (bad platform/device, no OpenCL at all, bad flags) and their exit codes.
usage: test_cli.py PATH/TO/clvae.  Exit 77 (skip) if no OpenCL platform exists."""
import json
import os
import subprocess
import sys
import tempfile

from testlib import check, summary

CLVAE = sys.argv[1]


def run(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([CLVAE, *args], capture_output=True, text=True, env=e, timeout=240)
    return p.returncode, p.stdout, p.stderr




def main():
    rc, out, err = run('devices', '--json')
    if rc == 2 and 'no OpenCL platform' in err:
        print('SKIP: no OpenCL platform')
        return 77
    devs = json.loads(out)
    keys = {'platform_index', 'platform', 'device_index', 'name', 'vendor', 'type', 'version',
            'driver', 'compute_units', 'global_mem_bytes', 'max_alloc_bytes', 'fp16', 'fp64'}
    check(rc == 0 and len(devs) >= 1, 'devices --json lists a device', out + err)
    check(all(set(d) == keys for d in devs), 'devices --json has exactly the documented keys', str(devs[0].keys()))
    check(all(isinstance(d['fp16'], bool) and isinstance(d['global_mem_bytes'], int) for d in devs),
          'devices --json types')

    rc, out, err = run('devices')
    check(rc == 0 and devs[0]['name'] in out and 'PLATFORM' in out and 'MAX ALLOC' in out,
          'devices prints a table naming the device', out + err)

    rc, out, err = run('selftest', '--platform', '9')
    check(rc == 2 and "'9'" in err and devs[0]['platform'] in err, 'selftest --platform 9: exit 2, lists platforms', err)
    rc, out, err = run('selftest', '--device', 'nosuchdevice')
    check(rc == 2 and 'nosuchdevice' in err and devs[0]['name'] in err,
          'selftest --device nosuchdevice: exit 2, lists devices', err)
    rc, out, err = run('selftest', '--gemm', 'cublas')
    check(rc == 2 and 'cublas' in err and 'builtin' in err, '--gemm with a bad value: exit 2', err)
    rc, out, err = run('selftest', '--device')
    check(rc == 2 and '--device needs a value' in err, 'missing value: exit 2', err)
    rc, out, err = run('selftest', '--frobnicate')
    check(rc == 2 and '--frobnicate' in err, 'unknown flag: exit 2', err)
    rc, out, err = run('nosuchcommand')
    check(rc == 2 and 'nosuchcommand' in err, 'unknown command: exit 2', err)
    rc, out, err = run('--help')
    check(rc == 0 and 'selftest' in out and 'devices' in out, '--help lists the commands', out)

    # No OpenCL platform at all: an empty vendors directory for the ICD loader.
    with tempfile.TemporaryDirectory() as empty:
        rc, out, err = run('devices', env={'OCL_ICD_VENDORS': empty})
        check(rc == 2 and 'pocl-opencl-icd' in err, 'no platform: exit 2 naming what to install', err)
        rc, out, err = run('selftest', env={'OCL_ICD_VENDORS': empty})
        check(rc == 2 and 'no OpenCL platform' in err, 'selftest without a platform: exit 2', err)

    # Selection by index and by substring, and from the environment; PoCL shows two
    # devices with POCL_DEVICES="pthread basic".
    pocl = [d for d in devs if 'Portable Computing Language' in d['platform']]
    if pocl:
        two = {'POCL_DEVICES': 'pthread basic'}
        rc, out, err = run('devices', '--json', env=two)
        pdevs = [d for d in json.loads(out) if d['platform'] == pocl[0]['platform']]
        check(len(pdevs) == 2, 'POCL_DEVICES="pthread basic" shows two devices', out)
        if len(pdevs) == 2:
            p = str(pdevs[0]['platform_index'])
            for spec, want in (('1', pdevs[1]), ('0', pdevs[0]), (pdevs[1]['name'][:5].upper(), pdevs[1])):
                rc, out, err = run('selftest', '--quick', '--kernel', 'adam', '--platform', p, '--device', spec, env=two)
                check(rc == 0 and f"device {want['device_index']} '{want['name']}'" in err,
                      f'--device {spec} picks {want["name"]}', err + out)
            rc, out, err = run('selftest', '--quick', '--kernel', 'adam', env={**two, 'CLVAE_PLATFORM': 'portable', 'CLVAE_DEVICE': '1'})
            check(rc == 0 and f"device 1 '{pdevs[1]['name']}'" in err, 'CLVAE_PLATFORM/CLVAE_DEVICE select', err)
            rc, out, err = run('selftest', '--platform', p, '--device', '2', env=two)
            check(rc == 2 and pdevs[1]['name'] in err, '--device 2 of 2: exit 2, lists devices', err)

    return summary()


if __name__ == '__main__':
    sys.exit(main())
