"""Shared by the Python tests: PASS/FAIL lines with details, and the closing summary."""
import sys

_counts = {'passed': 0, 'failed': 0}


def check(cond, what, detail=''):
    """Prints PASS or FAIL for `what`; on failure also the detail (output, values)."""
    _counts['passed' if cond else 'failed'] += 1
    print(('PASS ' if cond else 'FAIL ') + what)
    if not cond and detail:
        print('    ' + str(detail).strip().replace('\n', '\n    ')[:4000])
    sys.stdout.flush()


def summary():
    """Prints 'N passed, M failed' and returns the exit code (1 if anything failed)."""
    print(f"{_counts['passed']} passed, {_counts['failed']} failed")
    return 1 if _counts['failed'] else 0
